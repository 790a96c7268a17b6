<#
.SYNOPSIS
    Documented cmdlets, called with parameters splatted from JSON (never spliced into code).
#>

function ConvertTo-Lync2faCredential {
    <#
    .SYNOPSIS
        A PSCredential from {user, password}; the password is a secret already resolved from stdin.
    #>
    param([hashtable]$Value)
    $password = New-Object -TypeName System.Security.SecureString
    foreach ($character in ([string]$Value['password']).ToCharArray()) { $password.AppendChar($character) }
    $password.MakeReadOnly()
    return New-Object -TypeName System.Management.Automation.PSCredential -ArgumentList ([string]$Value['user']), $password
}

function ConvertTo-Lync2faSplat {
    <#
    .SYNOPSIS
        JSON parameters as a splat: true is a present switch, false an absent one, arrays stay arrays,
        {pscredential: {user, password}} becomes a PSCredential.
    #>
    param([hashtable]$Parameters)
    $splat = @{}
    if ($null -eq $Parameters) { return $splat }
    foreach ($name in $Parameters.Keys) {
        $value = $Parameters[$name]
        if ($value -is [array]) { $value = [string[]]$value }
        elseif ($value -is [hashtable] -and $value.Count -eq 1 -and $value.ContainsKey('pscredential')) {
            $value = ConvertTo-Lync2faCredential -Value $value['pscredential']
        }
        $splat[$name] = $value
    }
    return $splat
}

function Read-Lync2faCmdletFact {
    <#
    .SYNOPSIS
        Run a documented Get- cmdlet; return the selected properties of each object it writes.
    #>
    param([hashtable]$Query)
    $splat = ConvertTo-Lync2faSplat -Parameters $Query['params']
    $objects = @(& ([string]$Query['cmdlet']) @splat)
    $select = @($Query['select'])
    $rows = New-Object -TypeName System.Collections.ArrayList
    foreach ($object in $objects) {
        $row = @{}
        foreach ($property in $select) {
            if ($null -ne $property) { $row[[string]$property] = ConvertTo-Lync2faPlain -Value $object.$property }
        }
        [void]$rows.Add($row)
    }
    return ,$rows.ToArray()
}

function Invoke-Lync2faCmdlet {
    <#
    .SYNOPSIS
        Run a documented cmdlet with its parameters splatted; return nothing of its output but a count
        (and how many attempts it took).
    .DESCRIPTION
        With a 'retry' policy (attempts, delay_s, on_error_id) the cmdlet runs again, waiting
        delay_s * 2^(n-1) seconds before the n-th retry, while it fails with an error whose
        FullyQualifiedErrorId contains on_error_id; any other error, or the last attempt's, is thrown.
    #>
    param([hashtable]$Operation)
    $splat = ConvertTo-Lync2faSplat -Parameters $Operation['params']
    $retry = $null
    if ($Operation.ContainsKey('retry')) { $retry = $Operation['retry'] }
    $attempt = 1
    while ($true) {
        try {
            $output = @(& ([string]$Operation['cmdlet']) @splat)
            return @{ objects = $output.Count; attempts = $attempt }
        }
        catch {
            $errorId = [string]$_.FullyQualifiedErrorId
            if ($null -eq $retry -or $attempt -ge [int]$retry['attempts'] -or -not $errorId.Contains([string]$retry['on_error_id'])) {
                throw
            }
            Start-Sleep -Milliseconds ([int]([double]$retry['delay_s'] * 1000 * [Math]::Pow(2, $attempt - 1)))
            $attempt++
        }
    }
}
