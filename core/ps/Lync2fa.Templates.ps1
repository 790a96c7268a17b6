<#
.SYNOPSIS
    Issue a certificate template on this CA right after it was written to Active Directory.

.DESCRIPTION
    A template created moments ago may not have replicated yet to the domain controller the CA
    reads, nor reached the CA's template cache: Add-CATemplate then fails with "not found"
    (0x80070002, issue 7 defect 5). This primitive retries with back-off while that is the
    error, and throws any other error at once.
#>

function Add-Lync2faCATemplate {
    <#
    .SYNOPSIS
        Add-CATemplate -Name <Name> -Force, retried with back-off while the template is not found.
    .PARAMETER Name
        The template's common name (cn).
    .PARAMETER TimeoutSeconds
        How long to keep retrying before the last error is thrown.
    .PARAMETER FirstDelaySeconds
        The first wait; each next wait doubles, up to 30 seconds.
    #>
    param([string]$Name, [int]$TimeoutSeconds = 120, [int]$FirstDelaySeconds = 1)
    $deadline = [DateTime]::UtcNow.AddSeconds($TimeoutSeconds)
    $delay = [Math]::Max($FirstDelaySeconds, 1)
    $attempts = 0
    while ($true) {
        $attempts += 1
        try {
            Add-CATemplate -Name $Name -Force | Out-Null
            return @{ attempts = $attempts }
        }
        catch {
            $base = $_.Exception.GetBaseException()
            $notFound = ($base.HResult -eq -2147024894) -or ([string]$_.CategoryInfo.Category -eq 'ObjectNotFound')
            if (-not $notFound -or [DateTime]::UtcNow.AddSeconds($delay) -gt $deadline) { throw }
            Start-Sleep -Seconds $delay
            $delay = [Math]::Min($delay * 2, 30)
        }
    }
}
