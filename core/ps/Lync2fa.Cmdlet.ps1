<#
.SYNOPSIS
    Documented cmdlets, called with parameters splatted from JSON (never spliced into code).
#>

function ConvertTo-Lync2faSplat {
    <#
    .SYNOPSIS
        JSON parameters as a splat: true is a present switch, false an absent one, arrays stay arrays.
    #>
    param([hashtable]$Parameters)
    $splat = @{}
    if ($null -eq $Parameters) { return $splat }
    foreach ($name in $Parameters.Keys) {
        $value = $Parameters[$name]
        if ($value -is [array]) { $value = [string[]]$value }
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
        Run a documented cmdlet with its parameters splatted; return nothing of its output but a count.
    #>
    param([hashtable]$Operation)
    $splat = ConvertTo-Lync2faSplat -Parameters $Operation['params']
    $output = @(& ([string]$Operation['cmdlet']) @splat)
    return @{ objects = $output.Count }
}
