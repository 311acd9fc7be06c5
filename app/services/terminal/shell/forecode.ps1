# Forecode's shell integration for PowerShell, started as
# `pwsh -NoLogo -NoExit -Command ". 'THIS'"`. It reads the user's own profile first, then wraps
# the prompt in OSC 133 A / B with D;exit before it and VS Code's OSC 633 P;Cwd=, and sends
# OSC 633 E (the command line) and 133 C when Enter accepts a line (PSReadLine).
if (Test-Path -LiteralPath $PROFILE) { . $PROFILE }

function global:__ForecodeEscape([string]$Value) {
    $out = [System.Text.StringBuilder]::new()
    foreach ($ch in $Value.ToCharArray()) {
        if ($ch -eq '\') { [void]$out.Append('\\') }
        elseif ($ch -eq ';' -or [int]$ch -lt 0x20) { [void]$out.Append(('\x{0:x2}' -f [int]$ch)) }
        else { [void]$out.Append($ch) }
    }
    $out.ToString()
}

$global:__ForecodeOriginalPrompt = $function:prompt
$global:__ForecodeRan = $false

function global:prompt {
    $ok = $?
    $code = if ($global:LASTEXITCODE -ne $null) { $global:LASTEXITCODE } elseif ($ok) { 0 } else { 1 }
    $e = [char]0x1b
    $b = [char]0x07
    $marks = ''
    if ($global:__ForecodeRan) { $marks += "$e]133;D;$code$b" } else { $marks += "$e]133;D$b" }
    $global:__ForecodeRan = $false
    $marks += "$e]633;P;Cwd=$(__ForecodeEscape $PWD.ProviderPath)$b"
    $marks + "$e]133;A$b" + (& $global:__ForecodeOriginalPrompt) + "$e]133;B$b"
}

if (Get-Module -Name PSReadLine) {
    Set-PSReadLineKeyHandler -Chord Enter -ScriptBlock {
        $line = $null
        $cursor = $null
        [Microsoft.PowerShell.PSConsoleReadLine]::GetBufferState([ref]$line, [ref]$cursor)
        $global:__ForecodeRan = $true
        [Microsoft.PowerShell.PSConsoleReadLine]::AcceptLine()
        $e = [char]0x1b
        $b = [char]0x07
        [Console]::Write("$e]633;E;$(__ForecodeEscape $line)$b$e]133;C$b")
    }
}
