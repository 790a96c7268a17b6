using System;
using System.Collections.Generic;
using System.Runtime.InteropServices;
using System.Text;

// lync2fa's P/Invoke for TPM virtual smart cards, compiled by Add-Type from this text (shipped as
// data inside the host script). Unverified on hardware: see plugins/client/README.md.
//  - Reader(name): the PC/SC reader of a card, from the reader device's PnP friendly name; the
//    one place reader names are matched (exactly, else the single reader named after it with an
//    index: the smart card service names a reader "<friendly name> <n>", e.g. "Lync2FA 0").
//  - Change(...): changes a PIN through the card's own minidriver (Smart Card Minidriver
//    Specification: CardAcquireContext, CardChangeAuthenticator/Ex), the UI-less path under
//    every CSP/KSP.
//  - Containers(reader): the key containers on one card (NCryptEnumKeys of the Smart Card Key
//    Storage Provider scoped to \\.\<reader>\, silently).
public static class Lync2faNativeMethods
{
    const uint ScopeSystem = 2, ShareShared = 2, ProtocolAny = 3, LeaveCard = 0;
    const uint AttrAtr = 0x00090303, CardModule = 0x80000001, FileNotFound = 0x80100024;
    const uint AuthenticatePin = 2, ChangePinFlag = 2, RoleAdmin = 2;

    [DllImport("winscard.dll")] static extern int SCardEstablishContext(uint scope, IntPtr r1, IntPtr r2, out IntPtr context);
    [DllImport("winscard.dll")] static extern int SCardReleaseContext(IntPtr context);
    [DllImport("winscard.dll", CharSet = CharSet.Unicode)] static extern int SCardListReadersW(IntPtr context, string groups, [Out] char[] readers, ref int length);
    [DllImport("winscard.dll", CharSet = CharSet.Unicode)] static extern int SCardConnectW(IntPtr context, string reader, uint share, uint protocols, out IntPtr card, out uint protocol);
    [DllImport("winscard.dll")] static extern int SCardDisconnect(IntPtr card, uint disposition);
    [DllImport("winscard.dll")] static extern int SCardGetAttrib(IntPtr card, uint attribute, [Out] byte[] buffer, ref int length);
    [DllImport("winscard.dll", CharSet = CharSet.Unicode)] static extern int SCardListCardsW(IntPtr context, byte[] atr, IntPtr interfaces, int count, [Out] char[] cards, ref int length);
    [DllImport("winscard.dll", CharSet = CharSet.Unicode)] static extern int SCardGetCardTypeProviderNameW(IntPtr context, string card, uint provider, [Out] char[] name, ref int length);
    [DllImport("kernel32.dll", CharSet = CharSet.Unicode, SetLastError = true)] static extern IntPtr LoadLibraryW(string path);
    [DllImport("kernel32.dll", CharSet = CharSet.Ansi)] static extern IntPtr GetProcAddress(IntPtr module, string name);

    [UnmanagedFunctionPointer(CallingConvention.Winapi)] delegate IntPtr CspAlloc(UIntPtr size);
    [UnmanagedFunctionPointer(CallingConvention.Winapi)] delegate IntPtr CspReAlloc(IntPtr address, UIntPtr size);
    [UnmanagedFunctionPointer(CallingConvention.Winapi)] delegate void CspFree(IntPtr address);
    [UnmanagedFunctionPointer(CallingConvention.Winapi)] delegate uint CacheAdd(IntPtr context, IntPtr tag, uint flags, IntPtr data, uint length);
    [UnmanagedFunctionPointer(CallingConvention.Winapi)] delegate uint CacheLookup(IntPtr context, IntPtr tag, uint flags, IntPtr data, IntPtr length);
    [UnmanagedFunctionPointer(CallingConvention.Winapi)] delegate uint CacheDelete(IntPtr context, IntPtr tag, uint flags);
    [UnmanagedFunctionPointer(CallingConvention.Winapi)] delegate uint AcquireContext(IntPtr cardData, uint flags);
    [UnmanagedFunctionPointer(CallingConvention.Winapi)] delegate uint DeleteContext(IntPtr cardData);
    [UnmanagedFunctionPointer(CallingConvention.Winapi)] delegate uint GetProperty(IntPtr cardData, [MarshalAs(UnmanagedType.LPWStr)] string property, byte[] data, uint size, out uint length, uint flags);
    [UnmanagedFunctionPointer(CallingConvention.Winapi)] delegate uint ChangeAuthenticator(IntPtr cardData, [MarshalAs(UnmanagedType.LPWStr)] string user, byte[] current, uint currentLength, byte[] next, uint nextLength, uint retries, uint flags, out uint remaining);
    [UnmanagedFunctionPointer(CallingConvention.Winapi)] delegate uint ChangeAuthenticatorEx(IntPtr cardData, uint flags, uint authenticatingPin, byte[] current, uint currentLength, uint targetPin, byte[] next, uint nextLength, uint retries, out uint remaining);

    // CARD_DATA up to version 6 (cardmod.h); the card module may write later members, so the
    // block handed to it is larger than this structure.
    [StructLayout(LayoutKind.Sequential)]
    struct CardData
    {
        public uint dwVersion;
        public IntPtr pbAtr;
        public uint cbAtr;
        public IntPtr pwszCardName, pfnCspAlloc, pfnCspReAlloc, pfnCspFree, pfnCspCacheAddFile, pfnCspCacheLookupFile,
            pfnCspCacheDeleteFile, pvCacheContext, pfnCspPadData, hSCardCtx, hScard, pvVendorSpecific,
            pfnCardDeleteContext, pfnCardQueryCapabilities, pfnCardDeleteContainer, pfnCardCreateContainer,
            pfnCardGetContainerInfo, pfnCardAuthenticatePin, pfnCardGetChallenge, pfnCardAuthenticateChallenge,
            pfnCardUnblockPin, pfnCardChangeAuthenticator, pfnCardDeauthenticate, pfnCardCreateDirectory,
            pfnCardDeleteDirectory, pvUnused3, pvUnused4, pfnCardCreateFile, pfnCardReadFile, pfnCardWriteFile,
            pfnCardDeleteFile, pfnCardEnumFiles, pfnCardGetFileInfo, pfnCardQueryFreeSpace, pfnCardQueryKeySizes,
            pfnCardSignData, pfnCardRSADecrypt, pfnCardConstructDHAgreement, pfnCardDeriveKey,
            pfnCardDestroyDHAgreement, pfnCspGetDHAgreement, pfnCardGetChallengeEx, pfnCardAuthenticateEx,
            pfnCardChangeAuthenticatorEx, pfnCardDeauthenticateEx, pfnCardGetContainerProperty,
            pfnCardSetContainerProperty, pfnCardGetProperty, pfnCardSetProperty;
    }

    static readonly CspAlloc Alloc = delegate(UIntPtr size) { return Marshal.AllocHGlobal(new IntPtr((long)size.ToUInt64())); };
    static readonly CspReAlloc ReAlloc = delegate(IntPtr address, UIntPtr size) { return Marshal.ReAllocHGlobal(address, new IntPtr((long)size.ToUInt64())); };
    static readonly CspFree Free = delegate(IntPtr address) { Marshal.FreeHGlobal(address); };
    static readonly CacheAdd Add = delegate(IntPtr c, IntPtr t, uint f, IntPtr d, uint l) { return 0; };
    static readonly CacheLookup Lookup = delegate(IntPtr c, IntPtr t, uint f, IntPtr d, IntPtr l) { return FileNotFound; };
    static readonly CacheDelete Delete = delegate(IntPtr c, IntPtr t, uint f) { return 0; };

    static void Check(long status, string call)
    {
        if (status != 0) {
            throw new InvalidOperationException(call + " failed: 0x" + ((uint)status).ToString("x8"));
        }
    }

    static T Function<T>(IntPtr address, string name) where T : class
    {
        if (address == IntPtr.Zero) {
            throw new InvalidOperationException("The card minidriver does not implement " + name + ".");
        }
        return Marshal.GetDelegateForFunctionPointer(address, typeof(T)) as T;
    }

    static string[] Readers(IntPtr context)
    {
        int length = 0;
        Check(SCardListReadersW(context, null, null, ref length), "SCardListReaders");
        char[] buffer = new char[length];
        Check(SCardListReadersW(context, null, buffer, ref length), "SCardListReaders");
        return new string(buffer, 0, length).Split(new char[] { '\0' }, StringSplitOptions.RemoveEmptyEntries);
    }

    // The index the smart card service appends to a reader's friendly name: decimal digits.
    static bool IsIndex(string text)
    {
        foreach (char c in text) {
            if (c < '0' || c > '9') {
                return false;
            }
        }
        return text.Length > 0;
    }

    // The reader named exactly name, else the single one named name, a space and an index: a card
    // "Lync2FA" is the reader "Lync2FA 0" (or "Lync2FA 1" beside another), never "Lync2FA-old 0".
    static string Match(string[] readers, string name)
    {
        List<string> matches = new List<string>();
        foreach (string reader in readers) {
            if (string.Equals(reader, name, StringComparison.OrdinalIgnoreCase)) {
                return reader;
            }
            if (reader.StartsWith(name + " ", StringComparison.OrdinalIgnoreCase) && IsIndex(reader.Substring(name.Length + 1))) {
                matches.Add(reader);
            }
        }
        if (matches.Count != 1) {
            throw new InvalidOperationException("Expected one smart card reader named after '" + name + "', found " + matches.Count + ".");
        }
        return matches[0];
    }

    public static string Reader(string name)
    {
        IntPtr context;
        Check(SCardEstablishContext(ScopeSystem, IntPtr.Zero, IntPtr.Zero, out context), "SCardEstablishContext");
        try {
            return Match(Readers(context), name);
        }
        finally {
            SCardReleaseContext(context);
        }
    }

    [StructLayout(LayoutKind.Sequential, CharSet = CharSet.Unicode)]
    struct NCryptKeyName
    {
        public string pszName;
        public string pszAlgid;
        public uint dwLegacyKeySpec;
        public uint dwFlags;
    }

    [DllImport("ncrypt.dll", CharSet = CharSet.Unicode)] static extern int NCryptOpenStorageProvider(out IntPtr provider, string name, uint flags);
    [DllImport("ncrypt.dll", CharSet = CharSet.Unicode)] static extern int NCryptEnumKeys(IntPtr provider, string scope, out IntPtr keyName, ref IntPtr state, uint flags);
    [DllImport("ncrypt.dll")] static extern int NCryptFreeBuffer(IntPtr buffer);
    [DllImport("ncrypt.dll")] static extern int NCryptFreeObject(IntPtr handle);
    const uint SilentFlag = 0x40, NoMoreItems = 0x8009002A;

    public static string[] Containers(string reader, string storageProvider)
    {
        IntPtr provider, state = IntPtr.Zero, item;
        List<string> names = new List<string>();
        Check(NCryptOpenStorageProvider(out provider, storageProvider, 0), "NCryptOpenStorageProvider");
        try {
            while (true) {
                int status = NCryptEnumKeys(provider, "\\\\.\\" + reader + "\\", out item, ref state, SilentFlag);
                if ((uint)status == NoMoreItems) {
                    break;
                }
                Check(status, "NCryptEnumKeys");
                NCryptKeyName key = (NCryptKeyName)Marshal.PtrToStructure(item, typeof(NCryptKeyName));
                names.Add(key.pszName);
                NCryptFreeBuffer(item);
            }
        }
        finally {
            if (state != IntPtr.Zero) {
                NCryptFreeBuffer(state);
            }
            NCryptFreeObject(provider);
        }
        return names.ToArray();
    }

    // The PUK is the one PIN the card lists beyond the user and admin roles (CP_CARD_LIST_PINS).
    static uint PukId(IntPtr cardData, CardData card)
    {
        byte[] pins = new byte[4];
        uint length;
        Check(Function<GetProperty>(card.pfnCardGetProperty, "CardGetProperty")(cardData, "PIN List", pins, 4, out length, 0), "CardGetProperty(PIN List)");
        uint set = BitConverter.ToUInt32(pins, 0);
        List<uint> extra = new List<uint>();
        for (uint id = RoleAdmin + 1; id < 8; id++) {
            if ((set & (1u << (int)id)) != 0) {
                extra.Add(id);
            }
        }
        if (extra.Count != 1) {
            throw new InvalidOperationException("The card does not list exactly one PIN besides user and admin; cannot identify its PUK.");
        }
        return extra[0];
    }

    public static void Change(string reader, bool puk, string current, string next)
    {
        IntPtr context, card;
        uint protocol, remaining;
        Check(SCardEstablishContext(ScopeSystem, IntPtr.Zero, IntPtr.Zero, out context), "SCardEstablishContext");
        try {
            Check(SCardConnectW(context, Match(Readers(context), reader), ShareShared, ProtocolAny, out card, out protocol), "SCardConnect");
            try {
                byte[] atr = new byte[36];
                int length = atr.Length;
                Check(SCardGetAttrib(card, AttrAtr, atr, ref length), "SCardGetAttrib(ATR)");
                Array.Resize(ref atr, length);
                length = 0;
                Check(SCardListCardsW(context, atr, IntPtr.Zero, 0, null, ref length), "SCardListCards");
                char[] names = new char[length];
                Check(SCardListCardsW(context, atr, IntPtr.Zero, 0, names, ref length), "SCardListCards");
                string cardName = new string(names).Split('\0')[0];
                char[] module = new char[1024];
                length = module.Length;
                Check(SCardGetCardTypeProviderNameW(context, cardName, CardModule, module, ref length), "SCardGetCardTypeProviderName");
                IntPtr library = LoadLibraryW(new string(module).TrimEnd('\0'));
                if (library == IntPtr.Zero) {
                    throw new InvalidOperationException("Cannot load the minidriver of " + cardName + ".");
                }
                AcquireContext acquire = Function<AcquireContext>(GetProcAddress(library, "CardAcquireContext"), "CardAcquireContext");
                GCHandle pinnedAtr = GCHandle.Alloc(atr, GCHandleType.Pinned);
                IntPtr name = Marshal.StringToHGlobalUni(cardName);
                int size = Marshal.SizeOf(typeof(CardData)) + 1024;
                IntPtr block = Marshal.AllocHGlobal(size);
                try {
                    Marshal.Copy(new byte[size], 0, block, size);
                    CardData data = new CardData();
                    data.dwVersion = 6;
                    data.pbAtr = pinnedAtr.AddrOfPinnedObject();
                    data.cbAtr = (uint)atr.Length;
                    data.pwszCardName = name;
                    data.pfnCspAlloc = Marshal.GetFunctionPointerForDelegate(Alloc);
                    data.pfnCspReAlloc = Marshal.GetFunctionPointerForDelegate(ReAlloc);
                    data.pfnCspFree = Marshal.GetFunctionPointerForDelegate(Free);
                    data.pfnCspCacheAddFile = Marshal.GetFunctionPointerForDelegate(Add);
                    data.pfnCspCacheLookupFile = Marshal.GetFunctionPointerForDelegate(Lookup);
                    data.pfnCspCacheDeleteFile = Marshal.GetFunctionPointerForDelegate(Delete);
                    data.hSCardCtx = context;
                    data.hScard = card;
                    Marshal.StructureToPtr(data, block, false);
                    Check(acquire(block, 0), "CardAcquireContext");
                    data = (CardData)Marshal.PtrToStructure(block, typeof(CardData));
                    try {
                        byte[] old = Encoding.ASCII.GetBytes(current);
                        byte[] fresh = Encoding.ASCII.GetBytes(next);
                        if (puk) {
                            uint id = PukId(block, data);
                            Check(Function<ChangeAuthenticatorEx>(data.pfnCardChangeAuthenticatorEx, "CardChangeAuthenticatorEx")(block, ChangePinFlag, id, old, (uint)old.Length, id, fresh, (uint)fresh.Length, 0, out remaining), "CardChangeAuthenticatorEx");
                        }
                        else {
                            Check(Function<ChangeAuthenticator>(data.pfnCardChangeAuthenticator, "CardChangeAuthenticator")(block, "user", old, (uint)old.Length, fresh, (uint)fresh.Length, 0, AuthenticatePin, out remaining), "CardChangeAuthenticator");
                        }
                    }
                    finally {
                        Function<DeleteContext>(data.pfnCardDeleteContext, "CardDeleteContext")(block);
                    }
                }
                finally {
                    Marshal.FreeHGlobal(block);
                    Marshal.FreeHGlobal(name);
                    pinnedAtr.Free();
                }
            }
            finally {
                SCardDisconnect(card, LeaveCard);
            }
        }
        finally {
            SCardReleaseContext(context);
        }
    }
}
