<#
.SYNOPSIS
Removes the camgate service, its firewall rules and %ProgramFiles%\camgate.

.DESCRIPTION
Keeps %ProgramData%\camgate (config, camgate.db with the agent id and the
unsent outbox, logs) unless -Purge is given, so a reinstall comes back as
the same agent.
#>
#Requires -RunAsAdministrator
[CmdletBinding()]
param(
    # Also delete %ProgramData%\camgate.
    [switch]$Purge
)
$ErrorActionPreference = 'Stop'

$Name = 'camgate'
$InstallDir = Join-Path $env:ProgramFiles $Name
$DataDir = Join-Path $env:ProgramData $Name
$Exe = Join-Path $InstallDir 'camgate.exe'

if (Get-Service -Name $Name -ErrorAction SilentlyContinue) {
    if (Test-Path $Exe) {
        & $Exe service uninstall
        if ($LASTEXITCODE -ne 0) { throw "camgate service uninstall failed with exit code $LASTEXITCODE" }
    } else {
        Stop-Service -Name $Name -ErrorAction SilentlyContinue
        & sc.exe delete $Name | Out-Null
    }
}
Get-NetFirewallRule -Group $Name -ErrorAction SilentlyContinue | Remove-NetFirewallRule

# This script may itself live in $InstallDir: PowerShell has read it already.
if (Test-Path $InstallDir) { Remove-Item -Recurse -Force $InstallDir }
if ($Purge -and (Test-Path $DataDir)) {
    Remove-Item -Recurse -Force $DataDir
    Write-Host "Removed $DataDir"
} elseif (Test-Path $DataDir) {
    Write-Host "Kept $DataDir (config, data, logs); run with -Purge to delete it"
}
Write-Host "camgate removed."
