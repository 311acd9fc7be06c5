"""The code editor widget: Scintilla configured the way a VS Code user expects.

``CodeEditor`` adds to ``ScintillaEdit`` only what is about editing: text as ``str``, theme and
language, line numbers and folding, bracket matching, auto-indent, multiple selections, comment
toggling and VS Code's key habits. Files, tabs and saving live in ``document.py``.
"""

from __future__ import annotations

from lexilla import Lexer, create_lexer
from PySide6.QtCore import QEvent, Qt, Signal
from PySide6.QtGui import QFontDatabase, QKeyEvent, QKeySequence
from PySide6.QtWidgets import QWidget
from pyside6_scintilla import ScintillaEdit

from forecode_core.text.comments import toggle_block_comment, toggle_line_comment
from forecode_core.text.languages import PLAIN_TEXT, Language
from forecode_core.text.occurrences import all_occurrences, next_occurrence, word_at

from .autoclose import AutoClose
from .highlight import STYLE_DEFAULT, colours_for, create_configured_lexer
from .theme import DARK, Theme, bgr

__all__ = ["CodeEditor"]

# Scintilla constants (Scintilla.h) used below.
STYLE_LINENUMBER, STYLE_BRACELIGHT, STYLE_BRACEBAD, STYLE_INDENTGUIDE = 33, 34, 35, 37
SC_MARGIN_SYMBOL, SC_MARGIN_NUMBER = 0, 1
SC_MASK_FOLDERS = 0xFE000000
SC_MARKNUM_FOLDEREND, SC_MARKNUM_FOLDEROPENMID, SC_MARKNUM_FOLDERMIDTAIL = 25, 26, 27
SC_MARKNUM_FOLDERTAIL, SC_MARKNUM_FOLDERSUB, SC_MARKNUM_FOLDER, SC_MARKNUM_FOLDEROPEN = (
    28,
    29,
    30,
    31,
)
SC_MARK_EMPTY, SC_MARK_ARROWDOWN, SC_MARK_ARROW = 5, 6, 2
SC_AUTOMATICFOLD_SHOW_CLICK_CHANGE = 1 | 2 | 4
SC_IDLESTYLING_ALL = 3
SC_CACHE_PAGE = 2
SC_MOD_INSERTTEXT, SC_MOD_DELETETEXT = 0x1, 0x2
SC_ELEMENT_SELECTION_BACK, SC_ELEMENT_SELECTION_ADDITIONAL_BACK = 11, 13
SC_ELEMENT_SELECTION_INACTIVE_BACK = 17
SC_ELEMENT_CARET, SC_ELEMENT_CARET_ADDITIONAL, SC_ELEMENT_CARET_LINE_BACK = 40, 41, 50
SC_LAYER_UNDER_TEXT = 1
SC_EOL = {"\r\n": 0, "\r": 1, "\n": 2}
SC_WRAP_WORD = 1
SC_IV_LOOKBOTH = 3
EDGE_MULTILINE = 3
SCMOD_SHIFT, SCMOD_CTRL, SCMOD_ALT = 1, 2, 4
SCK_DOWN, SCK_UP, SCK_RIGHT = 300, 301, 303
SCI_LINEDELETE, SCI_SELECTIONDUPLICATE = 2338, 2469
SCI_WORDRIGHTEND, SCI_WORDRIGHTENDEXTEND = 2441, 2442
SCI_MOVESELECTEDLINESUP, SCI_MOVESELECTEDLINESDOWN = 2620, 2621
SCI_SETSELECTIONLAYER = 2763
SCI_SETCARETLINELAYER = 2765
SCVS_RECTANGULARSELECTION = 1
UPDATE_SELECTION_OR_CONTENT = 0x1 | 0x2
BRACES = b"()[]{}"
FOLD_MARGIN = 2


def _key(ch: int, mods: int = 0) -> int:
    return ch | (mods << 16)


class CodeEditor(ScintillaEdit):
    """A Scintilla editor with Forecode's defaults. Positions are UTF-8 byte offsets."""

    caretMoved = Signal(int, int)  # 1-based line, 1-based column

    # Keys that belong to the window's actions (VS Code habits), not to Scintilla's defaults.
    SHORTCUT_KEYS = frozenset(
        QKeySequence(s)[0].toCombined()
        for s in (
            "Ctrl+D",
            "Ctrl+/",
            "Ctrl+L",
            "Ctrl+Shift+L",
            "Ctrl+T",
            "Ctrl+U",
            "Ctrl+Shift+U",
            "Ctrl+G",
            "Ctrl+F",
            "Ctrl+H",
            "Ctrl+P",
            "Ctrl+Shift+P",
            "Ctrl+Tab",
            "Ctrl+Shift+Tab",
            "Ctrl+W",
            "Ctrl+S",
            "Ctrl+Shift+S",
            "Ctrl+N",
            "Ctrl+K",
            "Ctrl+B",
            "Ctrl+Shift+K",
            "Ctrl+Shift+E",
            "Ctrl+,",
            "Ctrl+=",
            "Ctrl+-",
            "Ctrl+0",
            "F3",
            "Shift+F3",
        )
    )

    def __init__(self, parent=None) -> None:  # type: ignore[no-untyped-def]
        super().__init__(parent)
        self.language: Language = PLAIN_TEXT
        self.theme: Theme = DARK
        self.tab_size = 4
        self.insert_spaces = True
        self.font_family = ""
        self.font_size = 11
        self._line_digits = 0
        self._word_mode: list[tuple[int, int]] | None = None  # Ctrl+D from a bare caret
        self.setCodePage(65001)
        # ``modified`` reaches Python only for text inserted or deleted (what every listener
        # here reads). By default Scintilla also reports annotation, marker, style and fold
        # changes, one signal per line: clearing the ghost-text annotation of a 4,000-line
        # file then made 4,000 Python calls on the UI thread.
        self.setModEventMask(SC_MOD_INSERTTEXT | SC_MOD_DELETETEXT)
        self.setBufferedDraw(True)
        self.setLayoutCache(SC_CACHE_PAGE)
        self.setIdleStyling(SC_IDLESTYLING_ALL)
        self._set_lexer(None)  # never no lexer at all: see _set_lexer
        self.setScrollWidthTracking(True)
        self.setScrollWidth(1)
        self.setEndAtLastLine(False)
        self.setMultipleSelection(True)
        self.setAdditionalSelectionTyping(True)
        self.setMultiPaste(1)
        self.setMouseSelectionRectangularSwitch(True)
        self.setRectangularSelectionModifier(SCMOD_ALT)
        self.setVirtualSpaceOptions(SCVS_RECTANGULARSELECTION)
        self.setCaretLineVisible(True)
        self.setCaretLineVisibleAlways(True)
        self.setCaretWidth(2)
        self.setIndentationGuides(SC_IV_LOOKBOTH)
        self.setTabIndents(True)
        self.setBackSpaceUnIndents(True)
        self.setMarginTypeN(0, SC_MARGIN_NUMBER)
        self.setMarginTypeN(1, SC_MARGIN_SYMBOL)
        # Margin 1: the changed-lines gutter (git_decorations.GitGutter: markers 12-15).
        self.setMarginWidthN(1, 7)
        self.setMarginMaskN(1, 0xF000)
        self._setup_folding()
        self._setup_keys()
        self.updateUi.connect(self._on_update_ui)
        self.charAdded.connect(self._on_char_added)
        self.linesAdded.connect(lambda _n: self._update_line_margin())
        self.auto_close = AutoClose(self)  # brackets and quotes typed in pairs (VS Code)
        self.apply_theme(DARK)

    # ----- text ---------------------------------------------------------------------------
    def text(self) -> str:
        return bytes(self.getText(self.textLength() + 1).data()).decode("utf-8", "replace")

    def text_bytes(self) -> bytes:
        return bytes(self.getText(self.textLength() + 1).data())

    def set_text(self, text: str, *, keep_undo: bool = False) -> None:
        """Replace the whole text. Without ``keep_undo`` the undo history starts afresh."""
        read_only = self.readOnly()
        self.setReadOnly(False)
        if keep_undo:
            self.beginUndoAction()
            self.targetWholeDocument()
            self.replaceTarget(-1, text)
            self.endUndoAction()
        else:
            self.setUndoCollection(False)
            self.setText(text)
            self.setUndoCollection(True)
            self.emptyUndoBuffer()
        self.setReadOnly(read_only)
        self._update_line_margin()

    def line_text(self, line: int) -> str:
        start, end = self.positionFromLine(line), self.lineEndPosition(line)
        return bytes(self.textRange(start, end).data()).decode("utf-8", "replace")

    def caret_line_col(self) -> tuple[int, int]:
        pos = self.currentPos()
        return self.lineFromPosition(pos) + 1, self.column(pos) + 1

    def set_eol(self, eol: str) -> None:
        self.setEOLMode(SC_EOL[eol])

    # ----- appearance ---------------------------------------------------------------------
    def set_font(self, family: str, size: int) -> None:
        self.font_family, self.font_size = family, size
        self.apply_theme(self.theme)

    def apply_theme(self, theme: Theme) -> None:
        self.theme = theme
        family = (
            self.font_family
            or QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont).family()
        )
        self.styleResetDefault()
        self.styleSetFont(STYLE_DEFAULT, family)
        self.styleSetSize(STYLE_DEFAULT, self.font_size)
        self.styleSetFore(STYLE_DEFAULT, bgr(theme.foreground))
        self.styleSetBack(STYLE_DEFAULT, bgr(theme.background))
        self.styleClearAll()
        for style, (colour, bold, italic) in colours_for(self.language, theme).items():
            self.styleSetFore(style, bgr(colour))
            self.styleSetBold(style, bold)
            self.styleSetItalic(style, italic)
        self.styleSetFore(STYLE_LINENUMBER, bgr(theme.margin_fore))
        self.styleSetBack(STYLE_LINENUMBER, bgr(theme.margin_back))
        self.styleSetFore(STYLE_INDENTGUIDE, bgr(theme.indent_guide))
        self.styleSetBack(STYLE_BRACELIGHT, bgr(theme.brace_match))
        self.styleSetFore(STYLE_BRACELIGHT, bgr(theme.foreground))
        self.styleSetBold(STYLE_BRACELIGHT, True)
        self.styleSetFore(STYLE_BRACEBAD, bgr(theme.brace_bad))
        opaque = 0xFF000000
        self.send(SCI_SETSELECTIONLAYER, SC_LAYER_UNDER_TEXT)
        self.send(SCI_SETCARETLINELAYER, SC_LAYER_UNDER_TEXT)
        self.setElementColour(SC_ELEMENT_SELECTION_BACK, bgr(theme.selection) | opaque)
        self.setElementColour(SC_ELEMENT_SELECTION_ADDITIONAL_BACK, bgr(theme.selection) | opaque)
        self.setElementColour(SC_ELEMENT_SELECTION_INACTIVE_BACK, bgr(theme.selection) | 0x80000000)
        self.setElementColour(SC_ELEMENT_CARET, bgr(theme.caret) | opaque)
        self.setElementColour(SC_ELEMENT_CARET_ADDITIONAL, bgr(theme.caret) | opaque)
        self.setElementColour(SC_ELEMENT_CARET_LINE_BACK, bgr(theme.caret_line) | opaque)
        self.setWhitespaceFore(True, bgr(theme.whitespace))
        self.setFoldMarginColour(True, bgr(theme.margin_back))
        self.setFoldMarginHiColour(True, bgr(theme.margin_back))
        for marker in range(SC_MARKNUM_FOLDEREND, SC_MARKNUM_FOLDEROPEN + 1):
            self.markerSetFore(marker, bgr(theme.margin_fore))
            self.markerSetBack(marker, bgr(theme.margin_fore))
        self.setEdgeColour(bgr(theme.indent_guide))
        # the hover's call tip (hover text, a squiggle's message) in the theme's colours, not
        # Scintilla's white box over dark code
        self.callTipSetBack(bgr(theme.ui_window))
        self.callTipSetFore(bgr(theme.ui_text))
        self.callTipSetForeHlt(bgr(theme.ui_highlight))
        self._line_digits = 0
        self._update_line_margin()
        self.colourise(0, -1) if self.textLength() < 200_000 else None

    def set_language(self, language: Language) -> None:
        self.language = language
        self._set_lexer(create_configured_lexer(language))
        self.apply_theme(self.theme)

    def _set_lexer(self, lexer: Lexer | None) -> None:
        # Without a lexer Scintilla waits for the container to style the text
        # (SCN_STYLENEEDED); with idle styling on, it re-armed its idle timer for ever: plain
        # text and binary tabs kept the UI thread at 100 % CPU. Lexilla's "null" lexer styles
        # everything as the default style, so idle styling finishes.
        chosen = lexer if lexer is not None else create_lexer("null")
        self.setILexer(chosen.detach() if chosen is not None else 0)

    def apply_settings(
        self,
        *,
        tab_size: int,
        insert_spaces: bool,
        word_wrap: bool,
        render_whitespace: bool,
        rulers: tuple[int, ...],
    ) -> None:
        self.tab_size, self.insert_spaces = tab_size, insert_spaces
        self.setTabWidth(tab_size)
        self.setIndent(tab_size)
        self.setUseTabs(not insert_spaces)
        self.setWrapMode(SC_WRAP_WORD if word_wrap else 0)
        self.setViewWS(1 if render_whitespace else 0)
        self.multiEdgeClearAll()
        if rulers:
            self.setEdgeMode(EDGE_MULTILINE)
            for column in rulers:
                self.multiEdgeAddLine(column, bgr(self.theme.indent_guide))
        else:
            self.setEdgeMode(0)

    def _update_line_margin(self) -> None:
        digits = max(3, len(str(self.lineCount())))
        if digits != self._line_digits:
            self._line_digits = digits
            width = self.textWidth(STYLE_LINENUMBER, "9" * (digits + 1))
            self.setMarginWidthN(0, width + 6)

    def _setup_folding(self) -> None:
        self.setMarginTypeN(FOLD_MARGIN, SC_MARGIN_SYMBOL)
        self.setMarginMaskN(FOLD_MARGIN, SC_MASK_FOLDERS)
        self.setMarginWidthN(FOLD_MARGIN, 14)
        self.setMarginSensitiveN(FOLD_MARGIN, True)
        self.setAutomaticFold(SC_AUTOMATICFOLD_SHOW_CLICK_CHANGE)
        for marker in (
            SC_MARKNUM_FOLDEREND,
            SC_MARKNUM_FOLDEROPENMID,
            SC_MARKNUM_FOLDERMIDTAIL,
            SC_MARKNUM_FOLDERTAIL,
            SC_MARKNUM_FOLDERSUB,
        ):
            self.markerDefine(marker, SC_MARK_EMPTY)
        self.markerDefine(SC_MARKNUM_FOLDER, SC_MARK_ARROW)
        self.markerDefine(SC_MARKNUM_FOLDEROPEN, SC_MARK_ARROWDOWN)

    def _setup_keys(self) -> None:
        # Scintilla's defaults that clash with VS Code's habits go to the window's actions.
        for ch, mods in (
            (ord("D"), SCMOD_CTRL),
            (ord("L"), SCMOD_CTRL),
            (ord("L"), SCMOD_CTRL | SCMOD_SHIFT),
            (ord("T"), SCMOD_CTRL),
            (ord("U"), SCMOD_CTRL),
            (ord("U"), SCMOD_CTRL | SCMOD_SHIFT),
            (ord("/"), SCMOD_CTRL),
            (ord("/"), SCMOD_CTRL | SCMOD_SHIFT),
        ):
            self.clearCmdKey(_key(ch, mods))
        self.assignCmdKey(_key(SCK_UP, SCMOD_ALT), SCI_MOVESELECTEDLINESUP)
        self.assignCmdKey(_key(SCK_DOWN, SCMOD_ALT), SCI_MOVESELECTEDLINESDOWN)
        self.assignCmdKey(_key(SCK_DOWN, SCMOD_ALT | SCMOD_SHIFT), SCI_SELECTIONDUPLICATE)
        self.assignCmdKey(_key(SCK_UP, SCMOD_ALT | SCMOD_SHIFT), SCI_SELECTIONDUPLICATE)
        self.assignCmdKey(_key(ord("K"), SCMOD_CTRL | SCMOD_SHIFT), SCI_LINEDELETE)
        # VS Code (Windows/Linux): Ctrl+Right goes to the end of the word, not the start of the
        # next one, so Ctrl+Shift+Right selects "words" and not "words " (typing a new name
        # over it ate the space, and next-edit saw no rename to propagate).
        self.assignCmdKey(_key(SCK_RIGHT, SCMOD_CTRL), SCI_WORDRIGHTEND)
        self.assignCmdKey(_key(SCK_RIGHT, SCMOD_CTRL | SCMOD_SHIFT), SCI_WORDRIGHTENDEXTEND)

    def event(self, ev: QEvent) -> bool:
        # Let the window's shortcuts win over Scintilla for the keys they own.
        if ev.type() == QEvent.Type.ShortcutOverride and isinstance(ev, QKeyEvent):
            combined = ev.keyCombination().toCombined()
            if combined in self.SHORTCUT_KEYS:
                ev.ignore()
                return False
        return super().event(ev)

    # ----- behaviour ----------------------------------------------------------------------
    def _on_update_ui(self, updated: int) -> None:
        if not int(updated) & UPDATE_SELECTION_OR_CONTENT:
            return
        pos = self.currentPos()
        brace = -1
        # SCI_GETCHARAT returns a signed char: the bytes of a non-ASCII character are negative
        # (``-61 in b"()"`` raised ValueError). Braces are ASCII, so mask to the byte.
        if pos > 0 and (self.charAt(pos - 1) & 0xFF) in BRACES:
            brace = pos - 1
        elif (self.charAt(pos) & 0xFF) in BRACES:
            brace = pos
        if brace >= 0:
            match = self.braceMatch(brace, 0)
            if match >= 0:
                self.braceHighlight(brace, match)
            else:
                self.braceBadLight(brace)
        else:
            self.braceHighlight(-1, -1)
        line, col = self.caret_line_col()
        self.caretMoved.emit(line, col)

    def _on_char_added(self, ch: int) -> None:
        eol = self.eOLMode()
        if not (ch == 10 or (ch == 13 and eol == SC_EOL["\r"])) or self.selections() > 1:
            return
        line = self.lineFromPosition(self.currentPos())
        if line == 0:
            return
        above = self.line_text(line - 1)
        indent = self.lineIndentation(line - 1)
        stripped = above.rstrip()
        if stripped and any(stripped.endswith(tok) for tok in self.language.indent_after):
            indent += self.tab_size
        if indent and not self.line_text(line).strip():
            self.setLineIndentation(line, indent)
            self.gotoPos(self.lineIndentPosition(line))

    def _selection_ranges(self) -> list[tuple[int, int]]:
        return [(self.selectionNStart(i), self.selectionNEnd(i)) for i in range(self.selections())]

    def add_next_occurrence(self) -> None:
        """Ctrl+D (VS Code): from a bare caret select the word, then add its next whole-word,
        case-sensitive occurrences; from a selection the user made, its exact text's
        (``forecode_core.text.occurrences``)."""
        text = self.text_bytes()
        main = self.mainSelection()
        if self.selectionNStart(main) == self.selectionNEnd(main):
            word = word_at(text, self.selectionNCaret(main))
            if word is not None:
                self.setSelectionNAnchor(main, word[0])
                self.setSelectionNCaret(main, word[1])
                self._word_mode = self._selection_ranges()
            return
        ranges = self._selection_ranges()
        whole_word = ranges == self._word_mode
        found = next_occurrence(text, ranges, main, whole_word)
        if found is None:
            return
        self.addSelection(found[1], found[0])
        self.scrollRange(found[0], found[1])
        self._word_mode = self._selection_ranges() if whole_word else None

    #: Ctrl+Shift+L's most selections: Scintilla adds selections in quadratic time (2,000 in
    #: ~40 ms, 10,000 in ~630 ms on the UI thread).
    SELECT_ALL_LIMIT = 2000

    def select_all_occurrences(self) -> int:
        """Ctrl+Shift+L: a selection at every occurrence of the selection's text, or of the
        word at a bare caret (whole words then, as VS Code). Returns how many it found, up to
        ``SELECT_ALL_LIMIT + 1``: above the limit only the first ``SELECT_ALL_LIMIT`` (and the
        selection itself) are selected."""
        text = self.text_bytes()
        main = self.mainSelection()
        start, end = self.selectionNStart(main), self.selectionNEnd(main)
        whole_word = start == end or self._selection_ranges() == self._word_mode
        if start == end:
            word = word_at(text, self.selectionNCaret(main))
            if word is None:
                return 0
            start, end = word
        found = all_occurrences(text, text[start:end], whole_word, self.SELECT_ALL_LIMIT + 1)
        if not found:
            return 0
        total = len(found)
        if total > self.SELECT_ALL_LIMIT:
            found = found[: self.SELECT_ALL_LIMIT]
            if (start, end) not in found:
                found[-1] = (start, end)
        first = next((i for i, r in enumerate(found) if r == (start, end)), 0)
        self.setSelection(found[first][1], found[first][0])
        for s, e in found[:first] + found[first + 1 :]:
            self.addSelection(e, s)
        self.setMainSelection(0)
        self._word_mode = None
        return total

    def toggle_comment(self) -> None:
        """Ctrl+/: comment or uncomment the lines of the selection, as one undo step."""
        lang = self.language
        if self.readOnly() or (lang.line_comment is None and lang.block_comment is None):
            return
        start, end = self.selectionStart(), self.selectionEnd()
        first, last = self.lineFromPosition(start), self.lineFromPosition(end)
        if last > first and end == self.positionFromLine(last):
            last -= 1  # a selection ending at column 0 does not include that line
        lines = [self.line_text(i) for i in range(first, last + 1)]
        if lang.line_comment is not None:
            new = toggle_line_comment(lines, lang.line_comment)
        else:
            assert lang.block_comment is not None
            new = toggle_block_comment(lines, *lang.block_comment)
        if new == lines:
            return
        eol = {0: "\r\n", 1: "\r", 2: "\n"}[self.eOLMode()]
        caret_line = self.lineFromPosition(self.currentPos())
        caret_col = self.currentPos() - self.positionFromLine(caret_line)
        self.beginUndoAction()
        self.setTargetRange(self.positionFromLine(first), self.lineEndPosition(last))
        self.replaceTarget(-1, eol.join(new))
        self.endUndoAction()
        if first == last:
            delta = len(new[0].encode()) - len(lines[0].encode())
            pos = self.positionFromLine(first) + max(0, caret_col + delta)
            self.setEmptySelection(min(pos, self.lineEndPosition(first)))
        else:
            self.setSelection(self.lineEndPosition(last), self.positionFromLine(first))

    def go_to_line(self, line: int, column: int = 1) -> None:
        """Move the caret to 1-based ``line`` (clamped) and show it in the middle of the view."""
        line = max(1, min(line, self.lineCount())) - 1
        self.ensureVisibleEnforcePolicy(line)
        pos = self.findColumn(line, max(0, column - 1))
        self.gotoPos(pos)
        self.setFirstVisibleLine(max(0, line - self.linesOnScreen() // 2))
        self.focus()

    def focus(self) -> None:
        # ScintillaEdit.setFocus is Scintilla's SCI_SETFOCUS(bool); Qt's focus is QWidget's.
        QWidget.setFocus(self, Qt.FocusReason.OtherFocusReason)
