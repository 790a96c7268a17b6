<#
.SYNOPSIS
    TPM virtual smart cards: the TPM and the cards as facts; create and destroy a card, both the
    same way (tpmvscmgr.exe in a SYSTEM scheduled task: the smart card service refuses a WinRM
    network logon, SYSTEM is served). The key containers on the cards are read the same way (in
    the session, SCardEstablishContext fails: SCARD_E_NO_SERVICE 0x8010001D). Python decides which
    card and with which arguments.
#>

function Read-Lync2faTpm {
    <#
    .SYNOPSIS
        Win32_Tpm: present, enabled, the TPM specification version ('2.0, 0, 1.38' -> '2.0').
    #>
    $tpm = Get-CimInstance -Namespace 'root/cimv2/Security/MicrosoftTpm' -ClassName 'Win32_Tpm' -ErrorAction SilentlyContinue
    if ($null -eq $tpm) {
        return @{ present = $false; enabled = $false; spec_version = $null }
    }
    $spec = (([string]$tpm.SpecVersion) -split ',')[0].Trim()
    return @{ present = $true; enabled = [bool]$tpm.IsEnabled_InitialValue; spec_version = $spec }
}

function Add-Lync2faNativeMethods {
    <#
    .SYNOPSIS
        Compile Lync2fa.NativeMethods.cs (shipped as text) once per process.
    .PARAMETER Source
        The C# text of Lync2fa.NativeMethods.cs.
    #>
    param([string]$Source)
    if ($null -ne ('Lync2faNativeMethods' -as [type])) { return }
    # The .NET Framework's C# compiler directly (what Add-Type itself calls): every cmdlet that
    # reaches a host must be one of the documented signatures lync2fa checks against, and
    # Add-Type is not among them.
    $provider = New-Object -TypeName Microsoft.CSharp.CSharpCodeProvider
    $options = New-Object -TypeName System.CodeDom.Compiler.CompilerParameters
    $options.GenerateInMemory = $true
    [void]$options.ReferencedAssemblies.Add('System.dll')
    [void]$options.ReferencedAssemblies.Add([System.Management.Automation.PSObject].Assembly.Location)
    $compiled = $provider.CompileAssemblyFromSource($options, [string[]]@($Source))
    if ($compiled.Errors.HasErrors) {
        throw ('Lync2fa.NativeMethods.cs did not compile: ' + (@($compiled.Errors | ForEach-Object { $_.ToString() }) -join '; '))
    }
}

function Get-Lync2faVirtualSmartCards {
    <#
    .SYNOPSIS
        The virtual smart cards (tpmvscmgr has no list verb): the ROOT\SMARTCARDREADER\* devices,
        their PnP name (the card's /name) and, when the smart card service answers (a scheduled
        task's logon: Get-Lync2faCardKeys), the key containers on each; null where it does not.
    .PARAMETER NativeSource
        The C# text of Lync2fa.NativeMethods.cs.
    .PARAMETER Provider
        The key storage provider whose containers to list (from Python); none: the cards only.
    #>
    param([string]$NativeSource, [string]$Provider)
    $cards = New-Object -TypeName System.Collections.ArrayList
    $readers = @(Get-CimInstance -ClassName 'Win32_PnPEntity' -Filter 'DeviceID LIKE ''ROOT\\SMARTCARDREADER\\%''')
    foreach ($device in $readers) {
        $containers = $null
        $why = $null
        try {
            if (-not [string]::IsNullOrEmpty($Provider)) {
                Add-Lync2faNativeMethods -Source $NativeSource
                $reader = [Lync2faNativeMethods]::Reader([string]$device.Name)
                $containers = @([Lync2faNativeMethods]::Containers($reader, $Provider))
            }
        }
        catch {
            $containers = $null  # unknown, and why (the decision names it)
            $why = [string]$_.Exception.GetBaseException().Message
        }
        [void]$cards.Add(@{ instance_id = [string]$device.DeviceID; name = [string]$device.Name; containers = $containers; containers_error = $why })
    }
    return ,$cards.ToArray()
}

function Invoke-Lync2faCardKeysJob {
    <#
    .SYNOPSIS
        The SYSTEM job listing the cards with the key containers on each.
    .PARAMETER Data
        provider, native (C# text).
    #>
    param([hashtable]$Data)
    $cards = Get-Lync2faVirtualSmartCards -NativeSource ([string]$Data['native']) -Provider ([string]$Data['provider'])
    return @{ ok = $true; cards = $cards }
}

function Get-Lync2faCardKeys {
    <#
    .SYNOPSIS
        Named fact virtual_smartcard_keys: the cards with their key containers, listed in a SYSTEM
        job (the smart card service refuses the WinRM session's network logon).
    .PARAMETER Arguments
        provider, timeout_s, policy_note.
    .PARAMETER NativeSource
        The C# text of Lync2fa.NativeMethods.cs.
    #>
    param([hashtable]$Arguments, [string]$NativeSource)
    $data = @{ provider = [string]$Arguments['provider']; native = $NativeSource }
    $job = Get-Lync2faJobScript -Functions @('Add-Lync2faNativeMethods', 'Get-Lync2faVirtualSmartCards', 'Invoke-Lync2faCardKeysJob') -Entry 'Invoke-Lync2faCardKeysJob'
    $result = Invoke-Lync2faScheduledJob -Script $job -Data $data -UserId 'SYSTEM' -ReaderSid '' -TimeoutSeconds ([int]$Arguments['timeout_s']) -Hints @{} -PolicyNote ([string]$Arguments['policy_note'])
    if ($null -eq $result['cards']) { return ,@() }  # an empty list may come back as null from JSON
    return ,@($result['cards'])
}

function Invoke-Lync2faCardTool {
    <#
    .SYNOPSIS
        tpmvscmgr.exe with its exit code and output. Under 'Stop', Windows PowerShell 5.1 turns a
        stderr line of a redirected native command into a terminating error: 'Continue' here, and
        the exit code decides.
    .PARAMETER Arguments
        The command line (verb first).
    #>
    param([string[]]$Arguments)
    $previous = $ErrorActionPreference
    $ErrorActionPreference = 'Continue'
    try {
        $lines = @(& tpmvscmgr.exe @Arguments 2>&1 | ForEach-Object { [string]$_ })
        return @{ code = $LASTEXITCODE; text = ($lines -join "`n").Trim() }
    }
    finally {
        $ErrorActionPreference = $previous
    }
}

function Remove-Lync2faCardNow {
    <#
    .SYNOPSIS
        tpmvscmgr destroy /instance: the one way a card is destroyed (rollback, and a new card whose
        PIN could not be set). Runs inside the SYSTEM job.
    .PARAMETER InstanceId
        The reader's device instance ID, ROOT\SMARTCARDREADER\000n.
    #>
    param([string]$InstanceId)
    return (Invoke-Lync2faCardTool -Arguments @('destroy', '/instance', $InstanceId))
}

function Invoke-Lync2faCardCreateJob {
    <#
    .SYNOPSIS
        The SYSTEM job: create the card with the arguments Python gave, then change its default
        PIN (and PUK) through the card's minidriver; if that fails the new card is destroyed again.
    .PARAMETER Data
        create (tpmvscmgr arguments), default_pin, pin, puk, reader_wait_s, native (C# text).
    #>
    param([hashtable]$Data)
    $created = Invoke-Lync2faCardTool -Arguments ([string[]]@($Data['create']))
    $found = [regex]::Match($created.text, 'ROOT\\SMARTCARDREADER\\[0-9]{4}')
    if ($created.code -ne 0) {
        throw ('tpmvscmgr.exe create failed (exit code ' + $created.code + '): ' + $created.text)
    }
    if (-not $found.Success) {
        throw ('tpmvscmgr.exe create did not report the instance ID of the new card: ' + $created.text)
    }
    $instance = $found.Value
    try {
        if ($Data['pin'] -or $Data['puk']) {
            Add-Lync2faNativeMethods -Source ([string]$Data['native'])
            $reader = Resolve-Lync2faCardReader -InstanceId $instance -WaitSeconds ([int]$Data['reader_wait_s'])
            if ($Data['pin']) {
                [Lync2faNativeMethods]::Change($reader, $false, [string]$Data['default_pin'], [string]$Data['pin'])
            }
            if ($Data['puk']) {
                [Lync2faNativeMethods]::Change($reader, $true, [string]$Data['default_pin'], [string]$Data['puk'])
            }
        }
    }
    catch {
        $message = [string]$_.Exception.GetBaseException().Message
        $destroyed = Remove-Lync2faCardNow -InstanceId $instance
        if ($destroyed.code -eq 0) {
            throw ($message + ' The new card ' + $instance + ' was destroyed again.')
        }
        throw ($message + ' The new card ' + $instance + ' could NOT be destroyed again (exit code ' + $destroyed.code + ': ' + $destroyed.text + '): run tpmvscmgr.exe destroy /instance ' + $instance + ' on this computer.')
    }
    return @{ ok = $true; instance_id = $instance }
}

function Invoke-Lync2faCardDestroyJob {
    <#
    .SYNOPSIS
        The SYSTEM job destroying one card (the same way creation's clean-up does).
    .PARAMETER Data
        instance_id.
    #>
    param([hashtable]$Data)
    $destroyed = Remove-Lync2faCardNow -InstanceId ([string]$Data['instance_id'])
    if ($destroyed.code -ne 0) {
        throw ('tpmvscmgr.exe destroy failed (exit code ' + $destroyed.code + '): ' + $destroyed.text)
    }
    return @{ ok = $true; instance_id = [string]$Data['instance_id'] }
}

function Resolve-Lync2faCardReader {
    <#
    .SYNOPSIS
        The PC/SC reader name of a card from its device instance ID: the device's PnP name (waiting
        for a new card to appear), matched by Lync2faNativeMethods.Reader, the one helper.
    .PARAMETER InstanceId
        ROOT\SMARTCARDREADER\000n.
    .PARAMETER WaitSeconds
        How long a new card may take to appear.
    #>
    param([string]$InstanceId, [int]$WaitSeconds)
    $filter = 'DeviceID = ''' + ($InstanceId -replace '\\', '\\') + ''''
    $deadline = [DateTime]::UtcNow.AddSeconds($WaitSeconds)
    $name = $null
    while ($null -eq $name) {
        $name = (Get-CimInstance -ClassName 'Win32_PnPEntity' -Filter $filter).Name
        if ($null -eq $name) {
            if ([DateTime]::UtcNow -gt $deadline) {
                throw ('The card ' + $InstanceId + ' did not appear under Smart card readers.')
            }
            Start-Sleep -Seconds 1
        }
    }
    return [Lync2faNativeMethods]::Reader([string]$name)
}

function New-Lync2faVirtualSmartCard {
    <#
    .SYNOPSIS
        Named operation vsc_create: the card created in a SYSTEM job, its instance ID written to the
        registry value Python named (record_path\record_name) as soon as it exists.
    .PARAMETER Arguments
        create (tpmvscmgr arguments), default_pin, pin, puk (secrets or null), timeout_s,
        reader_wait_s, policy_note, record_path, record_name.
    .PARAMETER NativeSource
        The C# text of Lync2fa.NativeMethods.cs.
    #>
    param([hashtable]$Arguments, [string]$NativeSource)
    $data = @{ create = @($Arguments['create']); default_pin = [string]$Arguments['default_pin']; pin = $Arguments['pin']; puk = $Arguments['puk']; reader_wait_s = [int]$Arguments['reader_wait_s']; native = $NativeSource }
    $job = Get-Lync2faJobScript -Functions @('Invoke-Lync2faCardTool', 'Remove-Lync2faCardNow', 'Add-Lync2faNativeMethods', 'Resolve-Lync2faCardReader', 'Invoke-Lync2faCardCreateJob') -Entry 'Invoke-Lync2faCardCreateJob'
    $result = Invoke-Lync2faScheduledJob -Script $job -Data $data -UserId 'SYSTEM' -ReaderSid '' -TimeoutSeconds ([int]$Arguments['timeout_s']) -Hints @{} -PolicyNote ([string]$Arguments['policy_note'])
    Set-Lync2faRegistryValue -Operation @{ path = [string]$Arguments['record_path']; name = [string]$Arguments['record_name']; value = [string]$result.instance_id; type = 'String' }
    return @{ instance_id = [string]$result.instance_id }
}

function Remove-Lync2faVirtualSmartCard {
    <#
    .SYNOPSIS
        Named operation vsc_destroy: tpmvscmgr destroy in a SYSTEM job (as creation runs).
    .PARAMETER Arguments
        instance_id, timeout_s, policy_note.
    #>
    param([hashtable]$Arguments)
    $job = Get-Lync2faJobScript -Functions @('Invoke-Lync2faCardTool', 'Remove-Lync2faCardNow', 'Invoke-Lync2faCardDestroyJob') -Entry 'Invoke-Lync2faCardDestroyJob'
    $result = Invoke-Lync2faScheduledJob -Script $job -Data @{ instance_id = [string]$Arguments['instance_id'] } -UserId 'SYSTEM' -ReaderSid '' -TimeoutSeconds ([int]$Arguments['timeout_s']) -Hints @{} -PolicyNote ([string]$Arguments['policy_note'])
    return @{ instance_id = [string]$result.instance_id }
}
