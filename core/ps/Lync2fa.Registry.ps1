<#
.SYNOPSIS
    Registry values: read a key, set or remove a value with its registry type.
#>

function Read-Lync2faRegistryFact {
    <#
    .SYNOPSIS
        A key's values (all, or the named ones) and subkey names; exists = false when the key is missing.

    .DESCRIPTION
        With a depth N greater than 0 in the query, the answer also holds the subkeys down to N
        levels, as keys = @{ subkey = @{ values; subkeys; keys } }, the named values selected at
        every level: a key and the subkeys a decision depends on are read in one request.
    #>
    param([hashtable]$Query)
    $path = [string]$Query['path']
    if (-not (Test-Path -LiteralPath $path)) {
        return @{ exists = $false; values = @{}; subkeys = @() }
    }
    $key = Get-Item -LiteralPath $path
    $node = Read-Lync2faRegistryKey -Key $key -Names $Query['names'] -Depth ([int]$Query['depth'])
    $node['exists'] = $true
    return $node
}

function Read-Lync2faRegistryKey {
    <#
    .SYNOPSIS
        One open key: its values (all when Names is null, else the named ones), its subkey names and, while Depth is above 0, its subkeys read the same way.
    #>
    param([Microsoft.Win32.RegistryKey]$Key, [string[]]$Names, [int]$Depth)
    $present = @($Key.GetValueNames())
    $wanted = $present
    if ($null -ne $Names) { $wanted = @($Names) }
    $values = @{}
    foreach ($name in $wanted) {
        if ($null -ne $name -and $present -contains $name) {
            $values[[string]$name] = ConvertTo-Lync2faPlain -Value $Key.GetValue($name)
        }
    }
    $subkeys = @($Key.GetSubKeyNames())
    $node = @{ values = $values; subkeys = $subkeys }
    if ($Depth -gt 0) {
        $keys = @{}
        foreach ($subkey in $subkeys) {
            $child = $Key.OpenSubKey($subkey)
            if ($null -eq $child) { continue }
            try {
                $keys[[string]$subkey] = Read-Lync2faRegistryKey -Key $child -Names $Names -Depth ($Depth - 1)
            } finally {
                $child.Close()
            }
        }
        $node['keys'] = $keys
    }
    return $node
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
