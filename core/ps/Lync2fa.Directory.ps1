<#
.SYNOPSIS
    Active Directory objects through ADSI (System.DirectoryServices): read, create, set, delete, ACEs.

.DESCRIPTION
    Every call here leaves the host (LDAP to a domain controller): over NTLM or non-delegated
    Kerberos the session has no network credentials and Windows answers "An operations error
    occurred." (0x80072020). Tasks that use these primitives declare reaches = ('ad',).
    A DN may hold {configurationNamingContext} or {defaultNamingContext}, read from RootDSE.
#>

function Resolve-Lync2faDn {
    <#
    .SYNOPSIS
        Fill the naming-context placeholders of a DN from RootDSE.
    #>
    param([string]$Dn)
    if ($Dn.Contains('{')) {
        $root = New-Object -TypeName System.DirectoryServices.DirectoryEntry -ArgumentList 'LDAP://RootDSE'
        $Dn = $Dn.Replace('{configurationNamingContext}', [string]$root.Properties['configurationNamingContext'].Value)
        $Dn = $Dn.Replace('{defaultNamingContext}', [string]$root.Properties['defaultNamingContext'].Value)
    }
    return $Dn
}

function Get-Lync2faDirectoryEntry {
    <#
    .SYNOPSIS
        The entry at a DN, or $null when there is none.
    #>
    param([string]$Dn)
    $path = 'LDAP://' + (Resolve-Lync2faDn -Dn $Dn)
    if (-not [System.DirectoryServices.DirectoryEntry]::Exists($path)) { return $null }
    return New-Object -TypeName System.DirectoryServices.DirectoryEntry -ArgumentList $path
}

function Get-Lync2faDirectoryAcl {
    <#
    .SYNOPSIS
        An entry's explicit and inherited ACEs as data: SID, account, rights bits, object type, allow.
    #>
    param([System.DirectoryServices.DirectoryEntry]$Entry)
    $rules = $Entry.ObjectSecurity.GetAccessRules($true, $true, [System.Security.Principal.SecurityIdentifier])
    $aces = New-Object -TypeName System.Collections.ArrayList
    foreach ($rule in $rules) {
        $account = $null
        try { $account = $rule.IdentityReference.Translate([System.Security.Principal.NTAccount]).Value } catch { $account = $null }
        [void]$aces.Add(@{
            sid         = $rule.IdentityReference.Value
            account     = $account
            rights      = [int]$rule.ActiveDirectoryRights
            object_type = [string]$rule.ObjectType
            allow       = ($rule.AccessControlType -eq [System.Security.AccessControl.AccessControlType]::Allow)
            inherited   = [bool]$rule.IsInherited
        })
    }
    return @{ owner = [string]$Entry.ObjectSecurity.GetOwner([System.Security.Principal.NTAccount]).Value; aces = $aces.ToArray() }
}

function ConvertFrom-Lync2faEntry {
    <#
    .SYNOPSIS
        The requested attributes of an entry (each a list of values) and, when asked, its ACL.
    #>
    param([System.DirectoryServices.DirectoryEntry]$Entry, $Attributes, [bool]$WithAcl)
    $values = @{}
    foreach ($name in @($Attributes)) {
        if ($null -eq $name) { continue }
        $list = New-Object -TypeName System.Collections.ArrayList
        foreach ($value in $Entry.Properties[[string]$name]) { [void]$list.Add((ConvertTo-Lync2faPlain -Value $value)) }
        $values[[string]$name] = $list.ToArray()
    }
    $out = @{ exists = $true; dn = [string]$Entry.Properties['distinguishedName'].Value; attributes = $values }
    if ($WithAcl) { $out['acl'] = Get-Lync2faDirectoryAcl -Entry $Entry }
    return $out
}

function Read-Lync2faDirectoryObject {
    <#
    .SYNOPSIS
        One object by DN: exists, attributes, and its ACL when 'acl' is true.
    #>
    param([hashtable]$Query)
    $entry = Get-Lync2faDirectoryEntry -Dn ([string]$Query['dn'])
    if ($null -eq $entry) { return @{ exists = $false; attributes = @{} } }
    return ConvertFrom-Lync2faEntry -Entry $entry -Attributes $Query['attributes'] -WithAcl ([bool]$Query['acl'])
}

function Read-Lync2faDirectorySearch {
    <#
    .SYNOPSIS
        The objects under a base DN that match an LDAP filter (one level or subtree).
    #>
    param([hashtable]$Query)
    $base = New-Object -TypeName System.DirectoryServices.DirectoryEntry -ArgumentList ('LDAP://' + (Resolve-Lync2faDn -Dn ([string]$Query['base'])))
    $searcher = New-Object -TypeName System.DirectoryServices.DirectorySearcher -ArgumentList $base, ([string]$Query['filter'])
    if ([string]$Query['scope'] -eq 'onelevel') { $searcher.SearchScope = [System.DirectoryServices.SearchScope]::OneLevel }
    $searcher.PageSize = 500
    $found = New-Object -TypeName System.Collections.ArrayList
    foreach ($item in $searcher.FindAll()) {
        [void]$found.Add((ConvertFrom-Lync2faEntry -Entry $item.GetDirectoryEntry() -Attributes $Query['attributes'] -WithAcl ([bool]$Query['acl'])))
    }
    return ,$found.ToArray()
}

function ConvertTo-Lync2faAttributeValue {
    <#
    .SYNOPSIS
        A typed attribute value from JSON: string, strings, int, bytes (base64), or a list of bytes.
    #>
    param([hashtable]$Typed)
    $value = $Typed['value']
    switch ([string]$Typed['type']) {
        'int'     { return [int]$value }
        'strings' { return ,([string[]]@($value)) }
        'bytes'   { return ,([Convert]::FromBase64String([string]$value)) }
        default   { return [string]$value }
    }
}

function Set-Lync2faEntryAttributes {
    <#
    .SYNOPSIS
        Write typed attributes on an entry (a null value clears the attribute) and commit.
    #>
    param([System.DirectoryServices.DirectoryEntry]$Entry, [hashtable]$Attributes)
    foreach ($name in $Attributes.Keys) {
        $typed = $Attributes[$name]
        if ($null -eq $typed['value']) {
            $Entry.Properties[$name].Clear()
        }
        else {
            $Entry.Properties[$name].Value = ConvertTo-Lync2faAttributeValue -Typed $typed
        }
    }
    $Entry.CommitChanges()
}

function New-Lync2faDirectoryObject {
    <#
    .SYNOPSIS
        Create an object (class and CN under a parent DN) with its typed attributes.
    #>
    param([hashtable]$Operation)
    $parent = Get-Lync2faDirectoryEntry -Dn ([string]$Operation['parent'])
    if ($null -eq $parent) { throw ('The parent object ' + [string]$Operation['parent'] + ' does not exist.') }
    $entry = $parent.Children.Add('CN=' + [string]$Operation['cn'], [string]$Operation['class'])
    $entry.CommitChanges()
    Set-Lync2faEntryAttributes -Entry $entry -Attributes $Operation['attributes']
    return @{ dn = [string]$entry.Properties['distinguishedName'].Value }
}

function Set-Lync2faDirectoryObject {
    <#
    .SYNOPSIS
        Set typed attributes on an existing object.
    #>
    param([hashtable]$Operation)
    $entry = Get-Lync2faDirectoryEntry -Dn ([string]$Operation['dn'])
    if ($null -eq $entry) { throw ('There is no such object on the server: ' + [string]$Operation['dn']) }
    Set-Lync2faEntryAttributes -Entry $entry -Attributes $Operation['attributes']
}

function Remove-Lync2faDirectoryObject {
    <#
    .SYNOPSIS
        Delete an object (and its children); a missing one is not an error.
    #>
    param([hashtable]$Operation)
    $entry = Get-Lync2faDirectoryEntry -Dn ([string]$Operation['dn'])
    if ($null -ne $entry) { $entry.DeleteTree() }
}

function New-Lync2faAce {
    <#
    .SYNOPSIS
        An ActiveDirectoryAccessRule from data: account or SID, rights bits, object type GUID, allow.
    #>
    param([hashtable]$Operation)
    $identity = New-Object -TypeName System.Security.Principal.NTAccount -ArgumentList ([string]$Operation['principal'])
    $sid = $identity.Translate([System.Security.Principal.SecurityIdentifier])
    $rights = [System.DirectoryServices.ActiveDirectoryRights][int]$Operation['rights']
    $type = [System.Security.AccessControl.AccessControlType]::Deny
    if ([bool]$Operation['allow']) { $type = [System.Security.AccessControl.AccessControlType]::Allow }
    $objectType = [guid]::Empty
    if (-not [string]::IsNullOrEmpty([string]$Operation['object_type'])) { $objectType = [guid][string]$Operation['object_type'] }
    return New-Object -TypeName System.DirectoryServices.ActiveDirectoryAccessRule -ArgumentList $sid, $rights, $type, $objectType
}

function Add-Lync2faDirectoryAce {
    <#
    .SYNOPSIS
        Add one ACE to an object's DACL and commit.
    #>
    param([hashtable]$Operation)
    $entry = Get-Lync2faDirectoryEntry -Dn ([string]$Operation['dn'])
    if ($null -eq $entry) { throw ('There is no such object on the server: ' + [string]$Operation['dn']) }
    $entry.ObjectSecurity.AddAccessRule((New-Lync2faAce -Operation $Operation))
    $entry.CommitChanges()
}

function Remove-Lync2faDirectoryAce {
    <#
    .SYNOPSIS
        Remove one ACE (same principal, rights, object type, allow) from an object's DACL and commit.
    #>
    param([hashtable]$Operation)
    $entry = Get-Lync2faDirectoryEntry -Dn ([string]$Operation['dn'])
    if ($null -eq $entry) { return }
    [void]$entry.ObjectSecurity.RemoveAccessRule((New-Lync2faAce -Operation $Operation))
    $entry.CommitChanges()
}
