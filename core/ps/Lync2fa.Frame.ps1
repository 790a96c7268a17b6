<#
.SYNOPSIS
    The frame of every lync2fa host script: read the request, run it, print one JSON line.

.DESCRIPTION
    lync2fa sends this library followed by one request: either facts to read or operations to
    apply. Python decided everything; this code only reads and applies. The request is data (a
    single-quoted here-string of JSON); secrets arrive separately on stdin and are referenced by
    name ({"secret": "pin"}). Nothing here uses $script: or $global: variables: the bootstrap runs
    this text through [ScriptBlock]::Create, whose script scope is the session's global scope
    (issue 7, defect 1), so state is passed explicitly.
#>

function ConvertTo-Lync2faPlain {
    <#
    .SYNOPSIS
        A PowerShell value as plain JSON-able data (hashtables, arrays, strings, numbers, booleans).
    #>
    param($Value, [int]$Depth = 0)
    if ($null -eq $Value) { return $null }
    if ($Depth -gt 6) { return [string]$Value }
    if ($Value -is [string] -or $Value -is [bool] -or $Value -is [int] -or $Value -is [long] -or $Value -is [double] -or $Value -is [decimal] -or $Value -is [uint32] -or $Value -is [int16] -or $Value -is [byte]) {
        return $Value
    }
    if ($Value -is [enum] -or $Value -is [guid] -or $Value -is [uri] -or $Value -is [version]) {
        return [string]$Value
    }
    if ($Value -is [datetime]) { return $Value.ToUniversalTime().ToString('o') }
    if ($Value -is [timespan]) { return $Value.TotalSeconds }
    if ($Value -is [byte[]]) { return [Convert]::ToBase64String($Value) }
    if ($Value -is [System.Security.Principal.SecurityIdentifier]) { return $Value.Value }
    if ($Value -is [System.Collections.IDictionary]) {
        $out = @{}
        foreach ($key in $Value.Keys) { $out[[string]$key] = ConvertTo-Lync2faPlain -Value $Value[$key] -Depth ($Depth + 1) }
        return $out
    }
    if ($Value -is [System.Collections.IEnumerable]) {
        $items = New-Object -TypeName System.Collections.ArrayList
        foreach ($item in $Value) { [void]$items.Add((ConvertTo-Lync2faPlain -Value $item -Depth ($Depth + 1))) }
        return ,$items.ToArray()
    }
    $out = @{}
    foreach ($property in $Value.PSObject.Properties) {
        $out[$property.Name] = ConvertTo-Lync2faPlain -Value $property.Value -Depth ($Depth + 1)
    }
    return $out
}

function ConvertTo-Lync2faHashtable {
    <#
    .SYNOPSIS
        A PSCustomObject from ConvertFrom-Json as a hashtable (Windows PowerShell 5.1 has no -AsHashtable).
    #>
    param($Value)
    if ($null -eq $Value) { return $null }
    if ($Value -is [System.Management.Automation.PSCustomObject]) {
        $out = @{}
        foreach ($property in $Value.PSObject.Properties) { $out[$property.Name] = ConvertTo-Lync2faHashtable -Value $property.Value }
        return $out
    }
    if ($Value -is [array]) {
        $items = New-Object -TypeName System.Collections.ArrayList
        foreach ($item in $Value) { [void]$items.Add((ConvertTo-Lync2faHashtable -Value $item)) }
        return ,$items.ToArray()
    }
    return $Value
}

function Resolve-Lync2faValue {
    <#
    .SYNOPSIS
        Replace {"secret": "name"} placeholders with the secret given on stdin; other values unchanged.
    #>
    param($Value, [hashtable]$Secrets)
    if ($Value -is [hashtable]) {
        if ($Value.Count -eq 1 -and $Value.ContainsKey('secret')) {
            $name = [string]$Value['secret']
            if (-not $Secrets.ContainsKey($name)) { throw ('lync2fa: the secret ' + $name + ' was not provided') }
            return $Secrets[$name]
        }
        $out = @{}
        foreach ($key in $Value.Keys) { $out[$key] = Resolve-Lync2faValue -Value $Value[$key] -Secrets $Secrets }
        return $out
    }
    if ($Value -is [array]) {
        $items = New-Object -TypeName System.Collections.ArrayList
        foreach ($item in $Value) { [void]$items.Add((Resolve-Lync2faValue -Value $item -Secrets $Secrets)) }
        return ,$items.ToArray()
    }
    return $Value
}

function Get-Lync2faError {
    <#
    .SYNOPSIS
        An error record as data; COM errors are unwrapped (they arrive inside MethodInvocationException).
    .DESCRIPTION
        The HResult is the base exception's. The message is the base exception's for a .NET/COM method
        call (MethodInvocationException only adds "Exception calling ..."), else the error's own: a cast
        error's base is a bare FormatException ("Input string was not in a correct format."), while its
        own message names the value and the type.
    #>
    param([System.Management.Automation.ErrorRecord]$ErrorRecord)
    $base = $ErrorRecord.Exception.GetBaseException()
    $text = $ErrorRecord.Exception.Message
    $wrapper = $ErrorRecord.Exception
    if ($wrapper -is [System.Management.Automation.MethodInvocationException] -or $wrapper -is [System.Management.Automation.SetValueInvocationException] -or $wrapper -is [System.Management.Automation.GetValueInvocationException]) {
        $text = $base.Message  # a .NET/COM call or property: "Exception calling/setting ..." adds nothing
    }
    return @{
        message  = [string]$text
        hresult  = [int]$base.HResult
        category = [string]$ErrorRecord.CategoryInfo.Category
        error_id = [string]$ErrorRecord.FullyQualifiedErrorId
    }
}

function Import-Lync2faModule {
    <#
    .SYNOPSIS
        Import a module once per PowerShell process (a Lync/SfB module import takes seconds).
    #>
    param([string]$Name, [hashtable]$Imported)
    if ([string]::IsNullOrEmpty($Name) -or $Imported.ContainsKey($Name)) { return }
    Import-Module -Name $Name -ErrorAction Stop
    $Imported[$Name] = $true
}

function Invoke-Lync2faRequest {
    <#
    .SYNOPSIS
        Run one request: read its facts, or apply its groups of operations in order, and return the response.
    .PARAMETER Request
        kind = 'facts' (facts: name -> query) or 'apply' (groups: id, needs, operations).
    .PARAMETER Secrets
        Secret values by name (from stdin, never from script text).
    .PARAMETER Imported
        Modules already imported by this PowerShell process (kept across a session's requests).
    .OUTPUTS
        facts (name -> ok, value or error), or groups (id, skipped, operations and, for a group that
        ran, elapsed_ms: its time on this host, the step's share of the request).
    #>
    param([hashtable]$Request, [hashtable]$Secrets, [hashtable]$Imported)
    if ($null -eq $Imported) { $Imported = @{} }
    if ($null -eq $Secrets) { $Secrets = @{} }
    if ($Request['kind'] -eq 'facts') {
        $facts = @{}
        foreach ($name in @($Request['facts'].Keys)) {
            $query = $Request['facts'][$name]
            try {
                Import-Lync2faModule -Name ([string]$query['module']) -Imported $Imported
                $facts[$name] = @{ ok = $true; value = (Read-Lync2faFact -Query $query) }
            }
            catch {
                $facts[$name] = @{ ok = $false; error = (Get-Lync2faError -ErrorRecord $_) }
            }
        }
        return @{ lync2fa = 1; facts = $facts }
    }
    $failed = @{}
    $answers = New-Object -TypeName System.Collections.ArrayList
    foreach ($group in @($Request['groups'])) {
        $id = [string]$group['id']
        $blocked = @(@($group['needs']) | Where-Object { $null -ne $_ -and $failed.ContainsKey([string]$_) })
        if ($blocked.Count -gt 0) {
            $failed[$id] = $true
            [void]$answers.Add(@{ id = $id; skipped = $true; blocked_by = [string]$blocked[0]; operations = @() })
            continue
        }
        $done = New-Object -TypeName System.Collections.ArrayList
        $clock = [System.Diagnostics.Stopwatch]::StartNew()  # the group's own time, for the step's duration
        foreach ($operation in @($group['operations'])) {
            try {
                Import-Lync2faModule -Name ([string]$operation['module']) -Imported $Imported
                $resolved = Resolve-Lync2faValue -Value $operation -Secrets $Secrets
                # Warnings (stream 3) would reach the console host, i.e. stdout, as "WARNING: ..." lines
                # around the answer: Install-WindowsFeature's "Windows automatic updating is not enabled",
                # for one. Redirected here, they travel as data with the operation's result.
                $streams = @(Invoke-Lync2faOperation -Operation $resolved 3>&1)
                $warned = @($streams | Where-Object { $_ -is [System.Management.Automation.WarningRecord] } | ForEach-Object { [string]$_.Message })
                $output = @($streams | Where-Object { $_ -isnot [System.Management.Automation.WarningRecord] })
                if ($output.Count -eq 1) { $output = $output[0] } elseif ($output.Count -eq 0) { $output = $null }
                [void]$done.Add(@{ ok = $true; output = (ConvertTo-Lync2faPlain -Value $output); warnings = $warned })
            }
            catch {
                [void]$done.Add(@{ ok = $false; error = (Get-Lync2faError -ErrorRecord $_) })
                $failed[$id] = $true
                break
            }
        }
        [void]$answers.Add(@{ id = $id; skipped = $false; operations = $done.ToArray(); elapsed_ms = [int64]$clock.ElapsedMilliseconds })
    }
    return @{ lync2fa = 1; groups = $answers.ToArray() }
}
