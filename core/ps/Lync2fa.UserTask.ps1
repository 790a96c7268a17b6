<#
.SYNOPSIS
    Jobs that must run on the PC as someone else than the WinRM session: as SYSTEM (the smart card
    service) or as the signed-in user (their certificate, enrolled onto the card in their own
    session, talking to the CA with their own logon: no second hop). The user's session, store and
    profile as facts; on-card enrollment, removal of a certificate or a SIP profile folder.

.DESCRIPTION
    A job is a script text and its data. They go to a folder under Program Files that only SYSTEM,
    Administrators and the job's user may open; the scheduled task runs powershell.exe with
    -EncodedCommand (a command, not a script file: a Group Policy execution policy such as
    AllSigned does not apply, while it overrides -ExecutionPolicy Bypass for -File) and a hidden
    window. The job's result is written under a temporary name and renamed into place.
#>

function New-Lync2faFolderSecurity {
    <#
    .SYNOPSIS
        A protected ACL owned by Administrators: SYSTEM and Administrators full control; ReadSids
        may list and traverse; ModifySid may change the folder's files.
    #>
    param([string[]]$ReadSids, [string]$ModifySid)
    $acl = New-Object -TypeName Security.AccessControl.DirectorySecurity
    $acl.SetAccessRuleProtection($true, $false)
    $acl.SetOwner((New-Object -TypeName Security.Principal.SecurityIdentifier -ArgumentList 'S-1-5-32-544'))
    $grants = @(@('S-1-5-18', 'FullControl', 'ContainerInherit, ObjectInherit'), @('S-1-5-32-544', 'FullControl', 'ContainerInherit, ObjectInherit'))
    foreach ($sid in @($ReadSids | Where-Object { $_ })) {
        $grants += , @($sid, 'ReadAndExecute', 'None')
    }
    if ($ModifySid) {
        $grants += , @($ModifySid, 'Modify', 'ContainerInherit, ObjectInherit')
    }
    foreach ($grant in $grants) {
        $identity = New-Object -TypeName Security.Principal.SecurityIdentifier -ArgumentList $grant[0]
        $rule = New-Object -TypeName Security.AccessControl.FileSystemAccessRule -ArgumentList $identity, $grant[1], $grant[2], 'None', 'Allow'
        $acl.AddAccessRule($rule)
    }
    return $acl
}

function Assert-Lync2faAdminFolder {
    <#
    .SYNOPSIS
        A plain folder (no junction) owned by SYSTEM or Administrators that nobody else (but AlsoSid)
        may write, create, delete or re-permission in; throws otherwise.
    #>
    param([string]$Path, [string]$AlsoSid)
    $adminSids = @('S-1-5-18', 'S-1-5-32-544')
    # WriteData, AppendData, WriteExtendedAttributes, DeleteSubdirectoriesAndFiles, WriteAttributes,
    # Delete, ChangePermissions, TakeOwnership, GENERIC_ALL, GENERIC_WRITE.
    $writeRights = 0x500D0156
    $item = Get-Item -LiteralPath $Path -Force
    if (-not $item.PSIsContainer -or ($item.Attributes -band [IO.FileAttributes]::ReparsePoint)) {
        throw ($Path + ' is not a plain folder (a file, link or junction): remove it; lync2fa creates it.')
    }
    $acl = Get-Acl -LiteralPath $Path
    $owner = $acl.GetOwner([Security.Principal.SecurityIdentifier]).Value
    if ($adminSids -notcontains $owner) {
        throw ($Path + ' is owned by ' + $owner + ', not SYSTEM or Administrators: refusing to hand a secret through it. Remove the folder; lync2fa creates it.')
    }
    foreach ($rule in @($acl.GetAccessRules($true, $true, [Security.Principal.SecurityIdentifier]))) {
        $sid = $rule.IdentityReference.Value
        $inheritOnly = ($rule.PropagationFlags -band [Security.AccessControl.PropagationFlags]::InheritOnly) -ne 0
        $writes = ([int64]$rule.FileSystemRights -band $writeRights) -ne 0
        if ($rule.AccessControlType -eq 'Allow' -and $writes -and -not $inheritOnly -and $adminSids -notcontains $sid -and $sid -ne $AlsoSid) {
            throw ($Path + ' grants ' + $sid + ' write access (' + [string]$rule.FileSystemRights + '): refusing to hand a secret through it. Remove the folder; lync2fa creates it.')
        }
    }
}

function New-Lync2faTaskFolder {
    <#
    .SYNOPSIS
        <Program Files>\lync2fa\run\<new GUID>: each level created with its protected ACL, then checked.
    #>
    param([string]$ReaderSid)
    $path = $env:ProgramFiles
    foreach ($part in @('lync2fa', 'run')) {
        $path = Join-Path -Path $path -ChildPath $part
        if (-not (Test-Path -LiteralPath $path)) {
            [IO.Directory]::CreateDirectory($path, (New-Lync2faFolderSecurity -ReadSids @('S-1-5-32-545'))) | Out-Null
        }
        Assert-Lync2faAdminFolder -Path $path -AlsoSid ''
    }
    $folder = Join-Path -Path $path -ChildPath ([guid]::NewGuid().ToString('N'))
    [IO.Directory]::CreateDirectory($folder, (New-Lync2faFolderSecurity -ReadSids @() -ModifySid $ReaderSid)) | Out-Null
    Assert-Lync2faAdminFolder -Path $folder -AlsoSid $ReaderSid
    return $folder
}

function Get-Lync2faJobScript {
    <#
    .SYNOPSIS
        A job's script text: the named library functions, then the entry function called with $Data.
    #>
    param([string[]]$Functions, [string]$Entry)
    $parts = @('param($Data)')
    foreach ($name in @('ConvertTo-Lync2faHashtable') + $Functions) {
        $parts += ('function ' + $name + ' {' + (Get-Item -LiteralPath ('function:' + $name)).ScriptBlock.ToString() + '}')
    }
    $parts += ('return (' + $Entry + ' -Data (ConvertTo-Lync2faHashtable -Value $Data))')
    return ($parts -join "`r`n")
}

function Invoke-Lync2faScheduledJob {
    <#
    .SYNOPSIS
        Run a job in a one-shot scheduled task (UserId SYSTEM, or the user in their interactive
        session) and return what it returned; throw its error (with the hint Python gave for its
        HResult) or, when it wrote nothing, say so (with Python's note on the execution policy).
    .PARAMETER Script
        The job's script text (Get-Lync2faJobScript).
    .PARAMETER Data
        The job's data (may hold a secret: it goes through the protected folder, deleted first thing).
    .PARAMETER UserId
        SYSTEM, or the user (DOMAIN\name) whose interactive session runs the job.
    .PARAMETER ReaderSid
        The user's SID, who may read the job folder ('' for SYSTEM).
    .PARAMETER TimeoutSeconds
        How long the job may run.
    .PARAMETER Hints
        Text appended to a job error, by its base exception's HResult (decimal string).
    .PARAMETER PolicyNote
        Text appended when the job wrote no result: the execution policy Group Policy sets, as
        Python read it from the registry ('' when none).
    #>
    param([string]$Script, [hashtable]$Data, [string]$UserId, [string]$ReaderSid, [int]$TimeoutSeconds, [hashtable]$Hints, [string]$PolicyNote)
    $folder = New-Lync2faTaskFolder -ReaderSid $ReaderSid
    $inputPath = Join-Path -Path $folder -ChildPath 'job.json'
    $outputPath = Join-Path -Path $folder -ChildPath 'out.json'
    $taskName = 'lync2fa-' + (Split-Path -Path $folder -Leaf)
    try {
        Set-Content -LiteralPath $inputPath -Value (ConvertTo-Json -InputObject @{ script = $Script; data = $Data } -Compress -Depth 8) -Encoding UTF8
        $quotedIn = "'" + ($inputPath -replace "'", "''") + "'"
        $quotedOut = "'" + ($outputPath -replace "'", "''") + "'"
        $runner = @(
            '$ErrorActionPreference = ''Stop''',
            ('$in = ' + $quotedIn),
            ('$out = ' + $quotedOut),
            'try {',
            '    $text = [IO.File]::ReadAllText($in)',
            '    Remove-Item -LiteralPath $in -Force',
            '    $job = $text | ConvertFrom-Json',
            '    $result = & ([ScriptBlock]::Create([string]$job.script)) $job.data',
            '}',
            'catch {',
            '    $base = $_.Exception.GetBaseException()',
            '    $result = @{ ok = $false; msg = [string]$base.Message; hresult = [int]$base.HResult }',
            '}',
            'ConvertTo-Json -InputObject $result -Compress -Depth 8 | Set-Content -LiteralPath ($out + ''.partial'') -Encoding UTF8',
            '[IO.File]::Move($out + ''.partial'', $out)'
        ) -join "`r`n"
        $encoded = [Convert]::ToBase64String([Text.Encoding]::Unicode.GetBytes($runner))
        $action = New-ScheduledTaskAction -Execute 'powershell.exe' -Argument ('-NoProfile -NonInteractive -WindowStyle Hidden -EncodedCommand ' + $encoded)
        if ($UserId -eq 'SYSTEM') {
            $principal = New-ScheduledTaskPrincipal -UserId 'SYSTEM' -LogonType ServiceAccount -RunLevel Highest
        }
        else {
            $principal = New-ScheduledTaskPrincipal -UserId $UserId -LogonType Interactive -RunLevel Limited
        }
        $settings = New-ScheduledTaskSettingsSet -ExecutionTimeLimit ([TimeSpan]::FromSeconds($TimeoutSeconds)) -AllowStartIfOnBatteries -DontStopIfGoingOnBatteries
        Register-ScheduledTask -TaskName $taskName -TaskPath '\lync2fa\' -Action $action -Principal $principal -Settings $settings | Out-Null
        $started = (Get-Date).AddSeconds(-1)
        Start-ScheduledTask -TaskName $taskName -TaskPath '\lync2fa\'
        $deadline = [DateTime]::UtcNow.AddSeconds($TimeoutSeconds)
        while (-not (Test-Path -LiteralPath $outputPath)) {
            $state = [string](Get-ScheduledTask -TaskName $taskName -TaskPath '\lync2fa\').State
            $info = Get-ScheduledTaskInfo -TaskName $taskName -TaskPath '\lync2fa\'
            # Ended: not running any more, and it did run after we started it (0x41303: has not run yet).
            $ended = $state -eq 'Ready' -and $info.LastRunTime -ge $started -and [int]$info.LastTaskResult -ne 0x41303
            if ($ended -or [DateTime]::UtcNow -gt $deadline) {
                Start-Sleep -Milliseconds 500
                if (Test-Path -LiteralPath $outputPath) { break }
                throw ('The scheduled task ' + $taskName + ' (as ' + $UserId + ') wrote no result (state ' + $state + ', last result 0x' + ('{0:x8}' -f [int]$info.LastTaskResult) + ', within ' + $TimeoutSeconds + ' s).' + $PolicyNote)
            }
            Start-Sleep -Milliseconds 500
        }
        $result = ConvertTo-Lync2faHashtable -Value (Get-Content -LiteralPath $outputPath -Raw | ConvertFrom-Json)
        if (-not $result['ok']) {
            $message = [string]$result['msg']
            $key = [string]$result['hresult']
            if ($null -ne $Hints -and $Hints.ContainsKey($key)) { $message = $message + '; ' + [string]$Hints[$key] }
            throw $message
        }
        return $result
    }
    finally {
        Unregister-ScheduledTask -TaskName $taskName -TaskPath '\lync2fa\' -Confirm:$false -ErrorAction SilentlyContinue
        Remove-Item -LiteralPath $folder -Recurse -Force -ErrorAction SilentlyContinue
    }
}

function Resolve-Lync2faUserSid {
    <#
    .SYNOPSIS
        DOMAIN\user -> SID (Windows' "Some or all identity references could not be translated." otherwise).
    #>
    param([string]$User)
    $account = New-Object -TypeName Security.Principal.NTAccount -ArgumentList $User
    return $account.Translate([Security.Principal.SecurityIdentifier]).Value
}

function Invoke-Lync2faUserHive {
    <#
    .SYNOPSIS
        Run Action with the registry root of the user's hive: HKEY_USERS\<SID> while signed in, else
        NTUSER.DAT loaded for the moment ($null root when there is no profile).
    #>
    param([string]$Sid, [scriptblock]$Action)
    $root = 'Registry::HKEY_USERS\' + $Sid
    if (Test-Path -LiteralPath $root) { return (& $Action $root) }
    $profilePath = Get-Lync2faProfilePath -Sid $Sid
    if ($null -eq $profilePath) { return (& $Action $null) }
    $mount = 'lync2fa_' + ($Sid -replace '-', '_')
    $previous = $ErrorActionPreference
    $ErrorActionPreference = 'Continue'
    & reg.exe load ('HKU\' + $mount) (Join-Path -Path $profilePath -ChildPath 'NTUSER.DAT') 2>&1 | Out-Null
    $code = $LASTEXITCODE
    $ErrorActionPreference = $previous
    if ($code -ne 0) { throw ('Cannot load the registry hive of ' + $Sid + ' (reg load exit code ' + $code + ').') }
    try {
        return (& $Action ('Registry::HKEY_USERS\' + $mount))
    }
    finally {
        [GC]::Collect()
        $ErrorActionPreference = 'Continue'
        & reg.exe unload ('HKU\' + $mount) 2>&1 | Out-Null
        if ($LASTEXITCODE -ne 0) { Write-Warning ('reg unload of ' + $mount + ' failed (exit code ' + $LASTEXITCODE + '): the hive stays mounted until the next restart.') }
        $ErrorActionPreference = $previous
    }
}

function Get-Lync2faProfilePath {
    <#
    .SYNOPSIS
        The user's profile folder from ProfileList ($null when the user has no profile here).
    #>
    param([string]$Sid)
    $entry = Get-ItemProperty -LiteralPath ('HKLM:\SOFTWARE\Microsoft\Windows NT\CurrentVersion\ProfileList\' + $Sid) -ErrorAction SilentlyContinue
    if ($null -eq $entry) { return $null }
    return [Environment]::ExpandEnvironmentVariables([string]$entry.ProfileImagePath)
}

function Read-Lync2faUserSession {
    <#
    .SYNOPSIS
        Named fact user_session: the user's SID, whether they are signed in interactively (own an
        explorer.exe), the certificates of a store of theirs (thumbprint and registry Blob, base64:
        Python reads it), and the folders matching a filter in folders of their profile.
    .PARAMETER Arguments
        user (DOMAIN\name), store (key relative to the user's hive), lync_folders (version ->
        folder relative to the profile), sip_filter (Get-ChildItem -Filter).
    #>
    param([hashtable]$Arguments)
    $sid = Resolve-Lync2faUserSid -User ([string]$Arguments['user'])
    $signedIn = $false
    foreach ($process in @(Get-CimInstance -ClassName 'Win32_Process' -Filter 'Name = ''explorer.exe''')) {
        $owner = Invoke-CimMethod -InputObject $process -MethodName 'GetOwnerSid'
        if ([string]$owner.Sid -eq $sid) { $signedIn = $true }
    }
    $store = [string]$Arguments['store']
    $certificates = Invoke-Lync2faUserHive -Sid $sid -Action {
        param($Root)
        $found = New-Object -TypeName System.Collections.ArrayList
        if ($Root) {
            foreach ($key in @(Get-ChildItem -LiteralPath ($Root + '\' + $store) -ErrorAction SilentlyContinue)) {
                $blob = $key.GetValue('Blob')
                if ($null -ne $blob) {
                    [void]$found.Add(@{ thumbprint = [string]$key.PSChildName; blob = [Convert]::ToBase64String([byte[]]$blob) })
                }
            }
        }
        return ,$found.ToArray()
    }
    $profiles = New-Object -TypeName System.Collections.ArrayList
    $profilePath = Get-Lync2faProfilePath -Sid $sid
    $folders = $Arguments['lync_folders']
    if ($null -ne $profilePath -and $folders -is [hashtable]) {
        foreach ($version in @($folders.Keys)) {
            $lync = Join-Path -Path $profilePath -ChildPath ([string]$folders[$version])
            foreach ($folder in @(Get-ChildItem -LiteralPath $lync -Directory -Filter ([string]$Arguments['sip_filter']) -ErrorAction SilentlyContinue)) {
                [void]$profiles.Add(([string]$version + '\' + $folder.Name))
            }
        }
    }
    return @{ sid = $sid; signed_in = $signedIn; certificates = @($certificates); sip_profiles = $profiles.ToArray() }
}

function Invoke-Lync2faEnrollJob {
    <#
    .SYNOPSIS
        The user's job: read the CA certificate from the CA (DCOM, the user's own logon), fail with
        no key made unless its chain ends in a trusted root (the revocation mode, failure HResult and
        message as Python gave them); then CertEnroll on the card (the key as Python set it, PIN
        given to the provider, silent), submit, install the response.
    .PARAMETER Data
        ca_config, provider, key_spec, key_length, export_policy, pin, template, reader (PnP name
        or null), native (C# text), revocation_mode (X509RevocationMode name), untrusted_hresult,
        untrusted_message (composite format: {0} the CA certificate's subject, {1} the chain status).
    #>
    param([hashtable]$Data)
    $authority = New-Object -ComObject 'CertificateAuthority.Request'
    $der = [Convert]::FromBase64String([string]$authority.GetCACertificate(0, [string]$Data['ca_config'], 1))
    $caCertificate = New-Object -TypeName Security.Cryptography.X509Certificates.X509Certificate2 -ArgumentList (, $der)
    $chain = New-Object -TypeName Security.Cryptography.X509Certificates.X509Chain
    $chain.ChainPolicy.RevocationMode = [Security.Cryptography.X509Certificates.X509RevocationMode][string]$Data['revocation_mode']
    if (-not $chain.Build($caCertificate)) {
        $status = @($chain.ChainStatus | ForEach-Object { [string]$_.Status }) -join ', '
        return @{ ok = $false; hresult = [int]$Data['untrusted_hresult']; msg = ([string]$Data['untrusted_message'] -f $caCertificate.Subject, $status) }
    }
    $key = New-Object -ComObject 'X509Enrollment.CX509PrivateKey'
    $key.ProviderName = [string]$Data['provider']
    $key.KeySpec = [int]$Data['key_spec']
    $key.Length = [int]$Data['key_length']
    $key.ExportPolicy = [int]$Data['export_policy']
    $key.Pin = [string]$Data['pin']
    if ($Data['reader']) {
        Add-Lync2faNativeMethods -Source ([string]$Data['native'])
        $key.ReaderName = [Lync2faNativeMethods]::Reader([string]$Data['reader'])
    }
    $request = New-Object -ComObject 'X509Enrollment.CX509CertificateRequestPkcs10'
    $request.InitializeFromPrivateKey(1, $key, [string]$Data['template'])
    $request.Silent = $true
    $enrollment = New-Object -ComObject 'X509Enrollment.CX509Enrollment'
    $enrollment.InitializeFromRequest($request)
    $encoded = $enrollment.CreateRequest(1)
    $disposition = $authority.Submit(1, $encoded, '', [string]$Data['ca_config'])
    if ($disposition -ne 3) {
        return @{ ok = $false; hresult = [int]$authority.GetLastStatus(); msg = ([string]$authority.GetDispositionMessage()) }
    }
    $enrollment.InstallResponse(0, $authority.GetCertificate(1), 1, '')
    $issued = New-Object -TypeName Security.Cryptography.X509Certificates.X509Certificate2 -ArgumentList (, [Convert]::FromBase64String($enrollment.Certificate(1)))
    return @{ ok = $true; thumbprint = $issued.Thumbprint }
}

function Invoke-Lync2faUserEnrollment {
    <#
    .SYNOPSIS
        Named operation user_enroll: pull the enterprise roots (certutil -pulse), enroll as the user
        in their session, write the new thumbprint to the registry value Python named.
    .PARAMETER Arguments
        user, sid, ca_config, template, provider, key_spec, key_length, export_policy, pin (secret),
        reader, timeout_s, hints, policy_note, revocation_mode, untrusted_hresult, untrusted_message
        (the trust check before the key is made), record_path, record_name.
    .PARAMETER NativeSource
        The C# text of Lync2fa.NativeMethods.cs.
    #>
    param([hashtable]$Arguments, [string]$NativeSource)
    $previous = $ErrorActionPreference
    $ErrorActionPreference = 'Continue'
    try {
        $pulse = @(& certutil.exe -pulse 2>&1 | ForEach-Object { [string]$_ }) -join "`n"
        $code = $LASTEXITCODE
    }
    finally {
        $ErrorActionPreference = $previous
    }
    if ($code -ne 0) { throw ('certutil.exe -pulse failed (exit code ' + $code + '): ' + $pulse.Trim()) }
    $data = @{ ca_config = [string]$Arguments['ca_config']; provider = [string]$Arguments['provider']; key_spec = [int]$Arguments['key_spec']; key_length = [int]$Arguments['key_length']; export_policy = [int]$Arguments['export_policy']; pin = [string]$Arguments['pin']; template = [string]$Arguments['template']; reader = $Arguments['reader']; native = $NativeSource; revocation_mode = [string]$Arguments['revocation_mode']; untrusted_hresult = [int]$Arguments['untrusted_hresult']; untrusted_message = [string]$Arguments['untrusted_message'] }
    $job = Get-Lync2faJobScript -Functions @('Add-Lync2faNativeMethods', 'Invoke-Lync2faEnrollJob') -Entry 'Invoke-Lync2faEnrollJob'
    $result = Invoke-Lync2faScheduledJob -Script $job -Data $data -UserId ([string]$Arguments['user']) -ReaderSid ([string]$Arguments['sid']) -TimeoutSeconds ([int]$Arguments['timeout_s']) -Hints $Arguments['hints'] -PolicyNote ([string]$Arguments['policy_note'])
    Set-Lync2faRegistryValue -Operation @{ path = [string]$Arguments['record_path']; name = [string]$Arguments['record_name']; value = [string]$result['thumbprint']; type = 'String' }
    return @{ thumbprint = [string]$result['thumbprint'] }
}

function Assert-Lync2faRelativePath {
    <#
    .SYNOPSIS
        A path below a root (a profile folder, a user's hive) as given: relative, no empty, '.' or
        '..' step, no wildcard; throws otherwise (a removal never leaves its root).
    #>
    param([string]$Path)
    $steps = @($Path -split '\\')
    if ([IO.Path]::IsPathRooted($Path) -or $Path.Contains('/') -or $Path.Contains(':') -or $Path.IndexOfAny([char[]]'*?') -ge 0 -or @($steps | Where-Object { $_ -eq '' -or $_ -eq '.' -or $_ -eq '..' }).Count -gt 0) {
        throw ('lync2fa: not a path below the user''s profile or hive: ' + $Path)
    }
    return $Path
}

function Remove-Lync2faUserCertificate {
    <#
    .SYNOPSIS
        Named operation user_certificate_remove: one certificate out of a store of the user's (a missing one is not an error).
    .PARAMETER Arguments
        sid, store (key relative to the user's hive), thumbprint.
    #>
    param([hashtable]$Arguments)
    $thumbprint = [string]$Arguments['thumbprint']
    if ($thumbprint -notmatch '^[0-9A-Fa-f]{40}$') { throw ('lync2fa: not a thumbprint: ' + $thumbprint) }
    $key = Assert-Lync2faRelativePath -Path ([string]$Arguments['store'] + '\' + $thumbprint)
    Invoke-Lync2faUserHive -Sid ([string]$Arguments['sid']) -Action {
        param($Root)
        if ($Root) {
            Remove-Item -LiteralPath ($Root + '\' + $key) -Recurse -Force -ErrorAction SilentlyContinue
        }
    } | Out-Null
}

function Remove-Lync2faSipProfile {
    <#
    .SYNOPSIS
        Named operation sip_profile_remove: one folder of the user's profile (a cached Lync SIP profile).
    .DESCRIPTION
        Removes only a direct child of a folder below the profile whose name matches the filter that
        found it (the user_session fact's): a recursive removal never reaches anything else.
    .PARAMETER Arguments
        sid, parent (relative to the profile folder), folder (one folder name), like (its -like filter).
    #>
    param([hashtable]$Arguments)
    $parent = Assert-Lync2faRelativePath -Path ([string]$Arguments['parent'])
    $name = [string]$Arguments['folder']
    $like = [string]$Arguments['like']
    if ([string]::IsNullOrEmpty($like) -or $name.IndexOfAny([char[]]'\/:*?') -ge 0 -or $name -eq '.' -or $name -eq '..' -or -not ($name -like $like)) {
        throw ('lync2fa: not a folder matching ' + $like + ': ' + $name)
    }
    $profilePath = Get-Lync2faProfilePath -Sid ([string]$Arguments['sid'])
    if ($null -eq $profilePath) { return }
    $path = Join-Path -Path (Join-Path -Path $profilePath -ChildPath $parent) -ChildPath $name
    if (Test-Path -LiteralPath $path) { Remove-Item -LiteralPath $path -Recurse -Force }
}
