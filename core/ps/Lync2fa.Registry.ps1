<#
.SYNOPSIS
    Registry values: read a key, set or remove a value with its registry type.
#>

function Read-Lync2faRegistryFact {
    <#
    .SYNOPSIS
        A key's values (all, or the named ones) and subkey names; exists = false when the key is missing.
    #>
    param([hashtable]$Query)
    $path = [string]$Query['path']
    if (-not (Test-Path -LiteralPath $path)) {
        return @{ exists = $false; values = @{}; subkeys = @() }
    }
    $key = Get-Item -LiteralPath $path
    $names = @($Query['names'])
    if ($null -eq $Query['names']) { $names = @($key.GetValueNames()) }
    $values = @{}
    foreach ($name in $names) {
        if ($null -ne $name -and $key.GetValueNames() -contains $name) {
            $values[[string]$name] = ConvertTo-Lync2faPlain -Value $key.GetValue($name)
        }
    }
    return @{ exists = $true; values = $values; subkeys = @($key.GetSubKeyNames()) }
}

function Set-Lync2faRegistryValue {
    <#
    .SYNOPSIS
        Create the key if needed and set one value with its type (String, ExpandString, DWord, QWord, MultiString, Binary).
    #>
    param([hashtable]$Operation)
    $path = [string]$Operation['path']
    if (-not (Test-Path -LiteralPath $path)) {
        New-Item -Path $path -Force | Out-Null
    }
    $value = $Operation['value']
    switch ([string]$Operation['type']) {
        'MultiString' { $value = [string[]]@($value) }
        'Binary'      { $value = [Convert]::FromBase64String([string]$value) }
        'DWord'       { $value = [int]$value }
        'QWord'       { $value = [long]$value }
    }
    New-ItemProperty -LiteralPath $path -Name ([string]$Operation['name']) -Value $value -PropertyType ([string]$Operation['type']) -Force | Out-Null
}

function Remove-Lync2faRegistryValue {
    <#
    .SYNOPSIS
        Remove one value, or the whole key when no name is given; a missing one is not an error.
    #>
    param([hashtable]$Operation)
    $path = [string]$Operation['path']
    if (-not (Test-Path -LiteralPath $path)) { return }
    if ($null -eq $Operation['name']) {
        Remove-Item -LiteralPath $path -Recurse -Force
        return
    }
    Remove-ItemProperty -LiteralPath $path -Name ([string]$Operation['name']) -Force -ErrorAction SilentlyContinue
}
