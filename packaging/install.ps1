<#
.SYNOPSIS
Installs camgate as a Windows service from the unpacked release zip.

.DESCRIPTION
Copies camgate.exe to %ProgramFiles%\camgate, writes the default config to
%ProgramData%\camgate\camgate.yml unless one exists, limits that folder to
SYSTEM and Administrators (the config may hold camera passwords), opens the
inbound firewall ports (8554/tcp RTSP, 8000-8001/udp RTP/RTCP, 8889/tcp
WebRTC HTTP, 8189/udp WebRTC ICE), then installs and starts the service
"camgate". Running it again upgrades the binary in place and keeps the
config and the data.

.EXAMPLE
powershell -ExecutionPolicy Bypass -File .\install.ps1
#>
#Requires -RunAsAdministrator
[CmdletBinding()]
param(
    # Folder holding camgate.exe and configs\camgate.yml; default: this script's folder.
    [string]$Source = $PSScriptRoot,
    # Leave the firewall alone (e.g. managed by group policy).
    [switch]$NoFirewall,
    # Install the service but do not start it.
    [switch]$NoStart
)
$ErrorActionPreference = 'Stop'

$Name = 'camgate'
$InstallDir = Join-Path $env:ProgramFiles $Name
$DataDir = Join-Path $env:ProgramData $Name
$Exe = Join-Path $InstallDir 'camgate.exe'
$Config = Join-Path $DataDir 'camgate.yml'

function Invoke-Camgate {
    & $Exe @args
    if ($LASTEXITCODE -ne 0) { throw "camgate $($args -join ' ') failed with exit code $LASTEXITCODE" }
}

$srcExe = Join-Path $Source 'camgate.exe'
if (-not (Test-Path $srcExe)) { throw "camgate.exe not found in $Source" }

# Upgrade: stop the running service so its binary can be replaced.
$existing = Get-Service -Name $Name -ErrorAction SilentlyContinue
if ($existing -and $existing.Status -ne 'Stopped') {
    Write-Host "Stopping service $Name"
    Stop-Service -Name $Name
    $existing.WaitForStatus('Stopped', [TimeSpan]::FromSeconds(30))
}

New-Item -ItemType Directory -Force -Path $InstallDir, $DataDir, (Join-Path $DataDir 'logs') | Out-Null
Copy-Item -Force $srcExe $Exe
foreach ($doc in 'README.md', 'INSTALL.txt', 'uninstall.ps1') {
    $p = Join-Path $Source $doc
    if (Test-Path $p) { Copy-Item -Force $p $InstallDir }
}

if (Test-Path $Config) {
    Write-Host "Keeping existing config $Config"
} else {
    Copy-Item (Join-Path $Source 'configs\camgate.yml') $Config
    Write-Host "Wrote default config $Config"
}
# SYSTEM (S-1-5-18) and Administrators (S-1-5-32-544) only.
& icacls.exe $DataDir /inheritance:r /grant:r '*S-1-5-18:(OI)(CI)F' '*S-1-5-32-544:(OI)(CI)F' | Out-Null
if ($LASTEXITCODE -ne 0) { throw "icacls on $DataDir failed" }

Invoke-Camgate check-config -c $Config | Out-Null

if (-not $NoFirewall) {
    # One rule group, replaced as a whole, so a re-run does not duplicate rules.
    Get-NetFirewallRule -Group $Name -ErrorAction SilentlyContinue | Remove-NetFirewallRule
    $rules = @(
        @{ DisplayName = 'camgate RTSP (TCP 8554)';          Protocol = 'TCP'; LocalPort = '8554' },
        @{ DisplayName = 'camgate RTP/RTCP (UDP 8000-8001)'; Protocol = 'UDP'; LocalPort = '8000-8001' },
        @{ DisplayName = 'camgate WebRTC HTTP (TCP 8889)';   Protocol = 'TCP'; LocalPort = '8889' },
        @{ DisplayName = 'camgate WebRTC ICE (UDP 8189)';    Protocol = 'UDP'; LocalPort = '8189' }
    )
    foreach ($r in $rules) {
        New-NetFirewallRule @r -Group $Name -Direction Inbound -Action Allow -Program $Exe -Profile Any | Out-Null
        Write-Host "Firewall: allowed $($r.DisplayName)"
    }
}

if (-not (Get-Service -Name $Name -ErrorAction SilentlyContinue)) {
    Invoke-Camgate service install -c $Config
}
if (-not $NoStart) {
    Invoke-Camgate service start
    # Informational: exit code 3 only means "not running yet".
    & $Exe service status
}
Write-Host "camgate installed. Try: ffplay rtsp://localhost:8554/demo"
