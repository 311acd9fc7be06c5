; Forecode's Windows installer (issue 18): a per-user install with no admin rights, as VS Code's
; and Cursor's "user setup" do. Built by packaging/windows/installer.py (`packaging/build.py
; windows-installer`), which passes:
;   /DVERSION=0.1.0 /DVI_VERSION=0.1.0.0 /DSOURCE_DIR=<the frozen folder> /DOUT_FILE=<Setup.exe>
;   /DUNINSTALL_LIST=<an include that removes the frozen folder's top-level entries>
;   [/DSIGN_COMMAND=<a command that signs the file "%1">]  (release builds: the uninstaller too)
; What it does: copies the frozen folder into %LOCALAPPDATA%\Programs\Forecode (the user may
; choose another folder), a Start-menu shortcut, and an uninstaller registered under HKCU's
; Uninstall key (Settings > Apps lists it). Nothing under HKLM, Program Files or another
; user's profile. The user's settings and models (%APPDATA%, the data folder) are kept on
; uninstall, as VS Code keeps them. No file associations (the app opens files from its own
; dialogs and the command line).

Unicode true
ManifestDPIAware true
SetCompressor /SOLID lzma
RequestExecutionLevel user

!include "MUI2.nsh"

!define APP_NAME "Forecode"
!define APP_EXE "forecode.exe"
!define UNINSTALL_KEY "Software\Microsoft\Windows\CurrentVersion\Uninstall\Forecode"

Name "${APP_NAME}"
OutFile "${OUT_FILE}"
InstallDir "$LOCALAPPDATA\Programs\${APP_NAME}"
InstallDirRegKey HKCU "${UNINSTALL_KEY}" "InstallLocation"
BrandingText "${APP_NAME} ${VERSION}"

VIProductVersion "${VI_VERSION}"
VIAddVersionKey "ProductName" "${APP_NAME}"
VIAddVersionKey "ProductVersion" "${VERSION}"
VIAddVersionKey "FileVersion" "${VERSION}"
VIAddVersionKey "FileDescription" "${APP_NAME} ${VERSION} setup (per user)"
VIAddVersionKey "LegalCopyright" "Forecode"

!ifdef SIGN_COMMAND
  !uninstfinalize '${SIGN_COMMAND}' = 0
!endif

!define MUI_ABORTWARNING
!define MUI_FINISHPAGE_RUN "$INSTDIR\${APP_EXE}"
!insertmacro MUI_PAGE_DIRECTORY
!insertmacro MUI_PAGE_INSTFILES
!insertmacro MUI_PAGE_FINISH
!insertmacro MUI_UNPAGE_CONFIRM
!insertmacro MUI_UNPAGE_INSTFILES
!insertmacro MUI_LANGUAGE "English"

Function .onInit
  SetShellVarContext current
FunctionEnd

Function un.onInit
  SetShellVarContext current
FunctionEnd

Section "Forecode" SecMain
  SectionIn RO
  SetOutPath "$INSTDIR"
  ; an upgrade replaces the bundle's libraries whole: no file of the old version is left
  RMDir /r "$INSTDIR\_internal"
  File /r "${SOURCE_DIR}\*.*"
  WriteUninstaller "$INSTDIR\Uninstall Forecode.exe"
  CreateShortcut "$SMPROGRAMS\${APP_NAME}.lnk" "$INSTDIR\${APP_EXE}"

  WriteRegStr HKCU "${UNINSTALL_KEY}" "DisplayName" "${APP_NAME}"
  WriteRegStr HKCU "${UNINSTALL_KEY}" "DisplayVersion" "${VERSION}"
  WriteRegStr HKCU "${UNINSTALL_KEY}" "Publisher" "Forecode"
  WriteRegStr HKCU "${UNINSTALL_KEY}" "DisplayIcon" "$INSTDIR\${APP_EXE}"
  WriteRegStr HKCU "${UNINSTALL_KEY}" "InstallLocation" "$INSTDIR"
  WriteRegStr HKCU "${UNINSTALL_KEY}" "UninstallString" '"$INSTDIR\Uninstall Forecode.exe"'
  WriteRegStr HKCU "${UNINSTALL_KEY}" "QuietUninstallString" '"$INSTDIR\Uninstall Forecode.exe" /S'
  WriteRegDWORD HKCU "${UNINSTALL_KEY}" "NoModify" 1
  WriteRegDWORD HKCU "${UNINSTALL_KEY}" "NoRepair" 1
SectionEnd

Section "Uninstall"
  ; only what the installer put there (the frozen folder's top-level entries, listed at build
  ; time) and the updater's folder: a folder the user chose keeps anything else it holds
  !include "${UNINSTALL_LIST}"
  RMDir /r "$INSTDIR\.update"
  Delete "$INSTDIR\Uninstall Forecode.exe"
  RMDir "$INSTDIR"
  Delete "$SMPROGRAMS\${APP_NAME}.lnk"
  DeleteRegKey HKCU "${UNINSTALL_KEY}"
SectionEnd
