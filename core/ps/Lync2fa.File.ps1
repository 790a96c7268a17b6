<#
.SYNOPSIS
    Text files: read one with its encoding and SHA-256, and replace its text only if it is still the
    file that was read (file backup and restore are Copy-Item / Remove-Item operations).
#>

function Get-Lync2faFileEncoding {
    <#
    .SYNOPSIS
        The encoding of a file's bytes from its byte order mark: utf-8-sig, utf-16 (little endian), or utf-8.
    .PARAMETER Bytes
        The file's content.
    #>
    param([byte[]]$Bytes)
    if ($Bytes.Length -ge 3 -and $Bytes[0] -eq 0xEF -and $Bytes[1] -eq 0xBB -and $Bytes[2] -eq 0xBF) { return 'utf-8-sig' }
    if ($Bytes.Length -ge 2 -and $Bytes[0] -eq 0xFF -and $Bytes[1] -eq 0xFE) { return 'utf-16' }
    return 'utf-8'
}

function Get-Lync2faSha256 {
    <#
    .SYNOPSIS
        The SHA-256 of bytes as lower-case hex.
    .PARAMETER Bytes
        The bytes to hash.
    #>
    param([byte[]]$Bytes)
    $algorithm = [System.Security.Cryptography.SHA256]::Create()
    try {
        return ([System.BitConverter]::ToString($algorithm.ComputeHash($Bytes))).Replace('-', '').ToLowerInvariant()
    }
    finally {
        $algorithm.Dispose()
    }
}

function ConvertFrom-Lync2faFileBytes {
    <#
    .SYNOPSIS
        A file's bytes as text, without the byte order mark.
    .PARAMETER Bytes
        The file's content.
    .PARAMETER Encoding
        What Get-Lync2faFileEncoding found.
    #>
    param([byte[]]$Bytes, [string]$Encoding)
    switch ($Encoding) {
        'utf-8-sig' { return (New-Object -TypeName System.Text.UTF8Encoding -ArgumentList $false).GetString($Bytes, 3, $Bytes.Length - 3) }
        'utf-16'    { return [System.Text.Encoding]::Unicode.GetString($Bytes, 2, $Bytes.Length - 2) }
        default     { return (New-Object -TypeName System.Text.UTF8Encoding -ArgumentList $false, $true).GetString($Bytes) }
    }
}

function ConvertTo-Lync2faFileBytes {
    <#
    .SYNOPSIS
        Text as a file's bytes in the given encoding, with its byte order mark where it has one.
    .PARAMETER Text
        The text to write.
    .PARAMETER Encoding
        utf-8-sig, utf-16 or utf-8.
    #>
    param([string]$Text, [string]$Encoding)
    switch ($Encoding) {
        'utf-8-sig' { return [byte[]](@(0xEF, 0xBB, 0xBF) + (New-Object -TypeName System.Text.UTF8Encoding -ArgumentList $false).GetBytes($Text)) }
        'utf-16'    { return [byte[]](@(0xFF, 0xFE) + [System.Text.Encoding]::Unicode.GetBytes($Text)) }
        default     { return (New-Object -TypeName System.Text.UTF8Encoding -ArgumentList $false).GetBytes($Text) }
    }
}

function Read-Lync2faFileText {
    <#
    .SYNOPSIS
        A text file: exists, text, encoding, sha256 (of the bytes on disk).
    .PARAMETER Path
        The file's full path (taken literally, no wildcards).
    #>
    param([string]$Path)
    if (-not (Test-Path -LiteralPath $Path -PathType Leaf)) { return @{ exists = $false } }
    $bytes = [System.IO.File]::ReadAllBytes($Path)
    $encoding = Get-Lync2faFileEncoding -Bytes $bytes
    return @{
        exists   = $true
        text     = (ConvertFrom-Lync2faFileBytes -Bytes $bytes -Encoding $encoding)
        encoding = $encoding
        sha256   = (Get-Lync2faSha256 -Bytes $bytes)
    }
}

function Set-Lync2faFileText {
    <#
    .SYNOPSIS
        Replace a text file's text, keeping its encoding, only if its SHA-256 is still the one read
        (someone else's change in between is never overwritten). Returns the new SHA-256.
    .PARAMETER Path
        The file's full path (taken literally).
    .PARAMETER Text
        The whole new text.
    .PARAMETER ExpectedHash
        The SHA-256 the decision read (Read-Lync2faFileText), lower-case hex.
    #>
    param([string]$Path, [string]$Text, [string]$ExpectedHash)
    $bytes = [System.IO.File]::ReadAllBytes($Path)
    $current = Get-Lync2faSha256 -Bytes $bytes
    if ($current -ne $ExpectedHash.ToLowerInvariant()) {
        throw ('lync2fa: ' + $Path + ' changed since it was read (SHA-256 ' + $current + ', expected ' + $ExpectedHash.ToLowerInvariant() + '); nothing was written.')
    }
    $new = ConvertTo-Lync2faFileBytes -Text $Text -Encoding (Get-Lync2faFileEncoding -Bytes $bytes)
    [System.IO.File]::WriteAllBytes($Path, $new)
    return @{ sha256 = (Get-Lync2faSha256 -Bytes $new) }
}
