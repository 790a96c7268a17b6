<#
.SYNOPSIS
    Account names to SIDs (NTAccount.Translate), so a decision can refuse an unknown principal
    before anything is written.

.DESCRIPTION
    The lookup goes through the computer's secure channel (LSA), not the session's credentials,
    so it works without delegation. A name that does not translate maps to $null; any other
    failure (no domain controller reachable) is thrown.
#>

function Read-Lync2faAccountSids {
    <#
    .SYNOPSIS
        The SID of each account name ('CORP\Lync 2FA Users', 'Authenticated Users'), or $null
        for a name Windows cannot translate.
    .PARAMETER Names
        The account names, as an operator wrote them.
    #>
    param([string[]]$Names)
    $sids = @{}
    foreach ($name in @($Names)) {
        try {
            $account = New-Object -TypeName System.Security.Principal.NTAccount -ArgumentList $name
            $sids[$name] = [string]$account.Translate([System.Security.Principal.SecurityIdentifier]).Value
        }
        catch {
            if ($_.Exception.GetBaseException() -is [System.Security.Principal.IdentityNotMappedException]) {
                $sids[$name] = $null
            }
            else {
                throw
            }
        }
    }
    return $sids
}
