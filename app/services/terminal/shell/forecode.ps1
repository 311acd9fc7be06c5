# Forecode's shell integration for PowerShell, started as
# `pwsh -NoLogo -NoExit -Command ". 'THIS'"`. It reads the user's own profile first, then wraps
# the prompt in OSC 133 A / B with D;exit before it and VS Code's OSC 633 P;Cwd=, and sends
# OSC 633 E (the command line) and 133 C when Enter accepts a line (PSReadLine).
# every mark ends with this session's nonce, kept out of the environment: a program's output
# cannot forge a command for the editor
$global:__ForecodeNonce = $env:FORECODE_NONCE
Remove-Item Env:FORECODE_NONCE -ErrorAction SilentlyContinue
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
    $n = $global:__ForecodeNonce
    if ($global:__ForecodeRan) { $marks += "$e]133;D;$code;$n$b" } else { $marks += "$e]133;D;;$n$b" }
    $global:__ForecodeRan = $false
    $marks += "$e]633;P;Cwd=$(__ForecodeEscape $PWD.ProviderPath);$n$b"
    $marks + "$e]133;A;$n$b" + (& $global:__ForecodeOriginalPrompt) + "$e]133;B;$n$b"
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
        $n = $global:__ForecodeNonce
        [Console]::Write("$e]633;E;$(__ForecodeEscape $line);$n$b$e]133;C;$n$b")
    }
}
