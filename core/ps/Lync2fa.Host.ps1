<#
.SYNOPSIS
    Host facts (PowerShell version, execution policy, domain) and file facts; native programs.
#>

function Read-Lync2faHostFact {
    <#
    .SYNOPSIS
        The host itself: PowerShell version, name, domain membership, the session's user. (The
        execution policy is decided in Python from its registry values: Get-ExecutionPolicy is not
        among the documented cmdlets lync2fa may use.)
    #>
    $system = Get-CimInstance -ClassName Win32_ComputerSystem
    return @{
        powershell_version = [string]$PSVersionTable.PSVersion
        computer_name      = [string]$env:COMPUTERNAME
        part_of_domain     = [bool]$system.PartOfDomain
        domain             = [string]$system.Domain
        user               = [string][System.Security.Principal.WindowsIdentity]::GetCurrent().Name
    }
}

function Read-Lync2faFileFact {
    <#
    .SYNOPSIS
        Whether a file exists, its size and SHA-256.
    #>
    param([hashtable]$Query)
    $path = [string]$Query['path']
    if (-not (Test-Path -LiteralPath $path -PathType Leaf)) { return @{ exists = $false } }
    $hash = Get-FileHash -LiteralPath $path -Algorithm SHA256
    return @{ exists = $true; sha256 = $hash.Hash.ToLowerInvariant(); size = (Get-Item -LiteralPath $path).Length }
}

function Invoke-Lync2faNative {
    <#
    .SYNOPSIS
        Run a native program with its arguments; an exit code outside ok_codes is an error. Returns
        the exit code, the stdout text and the stderr text.
    .DESCRIPTION
        With its stderr redirected, Windows PowerShell 5.1 applies $ErrorActionPreference to each
        stderr line: under the session's 'Stop' the first one is a terminating NativeCommandError
        before the exit code is known (PowerShell/PowerShell#3996; 7.2 changed it, 5.1 did not).
        'Continue' around the call, and the exit code decides.
    #>
    param([hashtable]$Operation)
    $arguments = [string[]]@($Operation['args'])
    $previous = $ErrorActionPreference
    $ErrorActionPreference = 'Continue'
    try {
        $lines = @(& ([string]$Operation['program']) @arguments 2>&1)
        $code = $LASTEXITCODE
    }
    finally {
        $ErrorActionPreference = $previous
    }
    $stderr = (@($lines | Where-Object { $_ -is [System.Management.Automation.ErrorRecord] } | ForEach-Object { [string]$_ }) -join "`n").Trim()
    $output = (@($lines | Where-Object { $_ -isnot [System.Management.Automation.ErrorRecord] } | ForEach-Object { [string]$_ }) -join "`n").Trim()
    $ok = @(0)
    if ($null -ne $Operation['ok_codes']) { $ok = @($Operation['ok_codes']) }
    if ($ok -notcontains $code) {
        $text = @(@($output, $stderr) | Where-Object { $_ }) -join "`n"
        throw ([string]$Operation['program'] + ' exited with code ' + $code + ': ' + $text)
    }
    return @{ exit_code = $code; output = $output; stderr = $stderr }
}
