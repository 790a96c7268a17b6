<#
.SYNOPSIS
    Which primitive reads a fact and which applies an operation: the whole vocabulary a host
    understands. Python (lync2fa.hostops) emits exactly these kinds; the lab implements the same.
#>

function Read-Lync2faFact {
    <#
    .SYNOPSIS
        Read one fact query (a hashtable with 'kind').
    #>
    param([hashtable]$Query)
    switch ([string]$Query['kind']) {
        'cmdlet'    { return Read-Lync2faCmdletFact -Query $Query }
        'registry'  { return Read-Lync2faRegistryFact -Query $Query }
        'ad_object' { return Read-Lync2faDirectoryObject -Query $Query }
        'ad_search' { return Read-Lync2faDirectorySearch -Query $Query }
        'file'      { return Read-Lync2faFileFact -Query $Query }
        'host'      { return Read-Lync2faHostFact }
        'named'     { return Read-Lync2faNamedFact -Name ([string]$Query['name']) -Arguments $Query['args'] }
        default     { throw ('lync2fa: unknown fact kind ' + [string]$Query['kind']) }
    }
}

function Invoke-Lync2faOperation {
    <#
    .SYNOPSIS
        Apply one operation (a hashtable with 'op'); returns what it produced, throws on failure.
    #>
    param([hashtable]$Operation)
    switch ([string]$Operation['op']) {
        'cmdlet'          { return Invoke-Lync2faCmdlet -Operation $Operation }
        'registry_set'    { return Set-Lync2faRegistryValue -Operation $Operation }
        'registry_remove' { return Remove-Lync2faRegistryValue -Operation $Operation }
        'ad_create'       { return New-Lync2faDirectoryObject -Operation $Operation }
        'ad_set'          { return Set-Lync2faDirectoryObject -Operation $Operation }
        'ad_delete'       { return Remove-Lync2faDirectoryObject -Operation $Operation }
        'ace_add'         { return Add-Lync2faDirectoryAce -Operation $Operation }
        'ace_remove'      { return Remove-Lync2faDirectoryAce -Operation $Operation }
        'native'          { return Invoke-Lync2faNative -Operation $Operation }
        'named'           { return Invoke-Lync2faNamedOperation -Name ([string]$Operation['name']) -Arguments $Operation['args'] }
        default           { throw ('lync2fa: unknown operation ' + [string]$Operation['op']) }
    }
}

function Read-Lync2faNamedFact {
    <#
    .SYNOPSIS
        The few facts no generic query expresses (named readers, one file per concern).
    .PARAMETER Arguments
        The query's args: a hashtable, as every JSON object of a request is converted
        (ConvertTo-Lync2faHashtable, Resolve-Lync2faValue).
    #>
    param([string]$Name, [hashtable]$Arguments)
    switch ($Name) {
        'account_sids' { return Read-Lync2faAccountSids -Names ([string[]]@($Arguments['names'])) }
        'tpm' { return Read-Lync2faTpm }
        'virtual_smartcards' { return Get-Lync2faVirtualSmartCards -NativeSource $Lync2faNativeMethodsSource -Provider '' }
        'virtual_smartcard_keys' { return Get-Lync2faCardKeys -Arguments $Arguments -NativeSource $Lync2faNativeMethodsSource }
        'user_session' { return Read-Lync2faUserSession -Arguments $Arguments }
        'file_text' { return Read-Lync2faFileText -Path ([string]$Arguments['path']) }
        default { throw ('lync2fa: unknown named fact ' + $Name) }
    }
}

function Invoke-Lync2faNamedOperation {
    <#
    .SYNOPSIS
        The few imperative jobs no generic operation expresses (named primitives, one file per concern).
    .PARAMETER Arguments
        The operation's args (a hashtable, as for Read-Lync2faNamedFact).
    #>
    param([string]$Name, [hashtable]$Arguments)
    switch ($Name) {
        'vsc_create' { return New-Lync2faVirtualSmartCard -Arguments $Arguments -NativeSource $Lync2faNativeMethodsSource }
        'vsc_destroy' { return Remove-Lync2faVirtualSmartCard -Arguments $Arguments }
        'user_enroll' { return Invoke-Lync2faUserEnrollment -Arguments $Arguments -NativeSource $Lync2faNativeMethodsSource }
        'user_certificate_remove' { return Remove-Lync2faUserCertificate -Arguments $Arguments }
        'sip_profile_remove' { return Remove-Lync2faSipProfile -Arguments $Arguments }
        'file_replace' { return Set-Lync2faFileText -Path ([string]$Arguments['path']) -Text ([string]$Arguments['text']) -ExpectedHash ([string]$Arguments['sha256']) }
        default { throw ('lync2fa: unknown named operation ' + $Name) }
    }
}
