"""A faster, output-identical ``nltk.word_tokenize(text, preserve_line=True)``.

``word_tokenize(text, preserve_line=True)`` is ``NLTKWordTokenizer().tokenize(text)``
(nltk 3.10.4: ``nltk/tokenize/__init__.py:151-169``): about 35 regex substitutions per call,
each compiled with the ``regex`` engine and run under ``nltk.redos``'s wall-clock guard, then
``str.split()``. On ConvAI2 dialogue text most of those substitutions cannot match, and the
ones that can are simple paddings that C-level string operations do just as well.

:func:`treebank_tokenize` runs a *fast path* for texts made only of printable ASCII without
``"`` and a backtick, and with no ``''`` and no two adjacent ``,``/``:``; anything else goes
to NLTK itself. The fast path replays ``NLTKWordTokenizer.tokenize``
(``nltk/tokenize/destructive.py:172-206``) step by step, in the same order, skipping each rule
whose trigger characters are absent. Every step produces NLTK's intermediate string up to
the length of whitespace runs (and a leading space in one case), and every later rule is
blind to those lengths, so the final ``split()`` gives the same list. Line numbers below
are ``nltk/tokenize/destructive.py`` of nltk 3.10.4.

Rules that cannot fire on fast-path input and are skipped outright:
``STARTING_QUOTES[0:4]`` (55-58: non-ASCII quotes, backticks, ``"``, ``''``),
``PUNCTUATION[5]`` (101: U+2012-2015 dashes), ``ENDING_QUOTES[0:3]`` (67-69: non-ASCII
quotes, ``''``, ``"``) and ``ENDING_QUOTES[3]`` (70: ``\\s+`` -> one space, invisible to
``split()`` and to every later rule). ``PUNCTUATION[6]`` (105, the second final-period rule)
is skipped because on fast-path input it can change only whitespace, see
:func:`_fast_path`. All regexes here use the stdlib ``re`` engine, which agrees with
``regex`` on ASCII text (``\\w``, ``\\b``, ``\\d``, ``(?i)``).
"""

from __future__ import annotations

import re

from nltk.tokenize import word_tokenize
from nltk.tokenize.destructive import NLTKWordTokenizer

__all__ = ["treebank_tokenize", "nltk_treebank_tokenize"]


def nltk_treebank_tokenize(text: str) -> list[str]:
    """The reference: NLTK's own ``word_tokenize(text, preserve_line=True)``."""
    return word_tokenize(text, preserve_line=True)


# Fast-path gate: printable ASCII except '"' (0x22) and '`' (0x60). Everything outside it
# (non-ASCII quotes and dashes, tabs and newlines, '"', '`') goes to NLTK.
_UNSAFE = re.compile(r"[^\x20\x21\x23-\x5f\x61-\x7e]")
# PUNCTUATION[1] (93) ``([:,])([^\d])`` consumes the character after the separator, so a
# separator right after another one is skipped by that pass; the fast path pads each
# separator on its own and therefore refuses these pairs.
_SEPARATOR_PAIR = re.compile(r"[,:][,:]")
# Characters padded by PUNCTUATION[4], [9], PARENS_BRACKETS or used by DOUBLE_DASHES:
# one search decides whether those (rare in dialogue) steps need to run at all.
_RARE = re.compile(r"[;@#$%&*()\[\]{}<>-]")

# STARTING_QUOTES[4] (60-61) ``(?i)(?<!\w)(\')(?!(?:re|ve|ll|m|t|s|d|n)\b)(?=\w)`` -> ``\1 ``:
# an opening single quote gets a space after it. The match is the quote alone, so the template
# is the literal "' ". Here the quote comes first and the look-behind is moved after it
# (same condition), which lets ``re`` scan for the literal quote; ``(?i)`` only ever
# mattered for the letters in the negative look-ahead.
_OPENING_QUOTE = re.compile(r"'(?<!\w')(?!(?i:re|ve|ll|m|t|s|d|n)\b)(?=\w)")
# PUNCTUATION[0] (90-91): the class ``[\]\)}>"'»”’ ]`` restricted to the fast-path alphabet.
_FINAL_PERIOD_TAIL = "])}>' "
# PUNCTUATION[1]+[2] (93-94): with no adjacent separators, every ',' / ':' not followed by a
# digit (or at the end) becomes " , " / " : " and one followed by a digit is left alone.
_COMMA = re.compile(r",(?![0-9])")
_COLON = re.compile(r":(?![0-9])")
# PUNCTUATION[3] (96-97).
_DOTS = re.compile(r"\.{2,}")
# PUNCTUATION[4] (99) and PARENS_BRACKETS (117): each character is padded on its own, so a
# translation table gives the same string.
_SYMBOLS = str.maketrans({c: f" {c} " for c in ";@#$%&"})
_BRACKETS = str.maketrans({c: f" {c} " for c in "[](){}<>"})
# ENDING_QUOTES[4] (71) and [5] (72): ``([^' ])(CLITIC) `` -> ``\1 \2 ``. Both need the
# space after the clitic, so a match sits at the end of a space-separated chunk, at most one
# per chunk, and the characters a match consumes (its ``\1`` and the space) are never needed
# by a match in another chunk. Matching the clitic alone, with ``\1`` and the space as
# lookarounds, and putting a space before it therefore gives the same string. The patterns
# start with a literal (look-behinds moved after it) so ``re`` can scan for it quickly.
_CLITIC_1 = re.compile(r"'(?<=[^' ]')[sSmMdD]?(?= )")
_CLITIC_2 = re.compile(r"'(?<=[^' ]')(?:ll|LL|re|RE|ve|VE)(?= )|n(?<=[^' ]n)'t(?= )|N(?<=[^' ]N)'T(?= )")
# Cheap pre-check for _CLITIC_2 (whose 'n' branch makes a miss slow): a superset of its matches.
_CLITIC_2_HINT = re.compile(r"'(?:ll|LL|re|RE|ve|VE|t|T) ")


def _space_before(match: re.Match) -> str:
    return " " + match.group()


def _contraction_hint(text: str) -> bool:
    """False when no CONTRACTIONS2/3 pattern (25-35, 133-134, 196-199) can match ``text``."""
    lower = text.lower()
    return (
        "cannot" in lower or "d'ye" in lower or "gimme" in lower or "gonna" in lower or "gotta" in lower
        or "lemme" in lower or "more'n" in lower or "wanna" in lower or "'tis" in lower or "'twas" in lower
    )


_CONTRACTIONS = NLTKWordTokenizer.CONTRACTIONS2 + NLTKWordTokenizer.CONTRACTIONS3


def _fast_path(text: str) -> list[str] | None:
    """NLTK's tokens for ``text``, or None when ``text`` is outside the fast path."""
    if not text.isascii() or _UNSAFE.search(text) is not None or "''" in text:
        return None
    has_separator = "," in text or ":" in text
    if has_separator and _SEPARATOR_PAIR.search(text) is not None:
        return None
    has_quote = "'" in text

    # STARTING_QUOTES[4] (60-61).
    if has_quote:
        text = _OPENING_QUOTE.sub("' ", text)
    # PUNCTUATION[0] (90-91): ``([^\.])(\.)([\]\)}>"'»”’ ]*+)\s*$`` -> ``\1 \2 \3 ``. The
    # possessive tail run reaches the end of the string (the only whitespace here is ' '),
    # so the match is the last '.', when only tail characters follow it and a non-'.' precedes.
    if "." in text:
        head = text.rstrip(_FINAL_PERIOD_TAIL)
        if len(head) >= 2 and head[-1] == "." and head[-2] != ".":
            text = f"{head[:-1]} . {text[len(head):]} "
    # PUNCTUATION[1] and [2] (93-94).
    if has_separator:
        if "," in text:
            text = _COMMA.sub(" , ", text)
        if ":" in text:
            text = _COLON.sub(" : ", text)
    # PUNCTUATION[3] (96-97).
    if ".." in text:
        text = _DOTS.sub(r" \g<0> ", text)
    rare = _RARE.search(text) is not None
    # PUNCTUATION[4] (99).
    if rare:
        text = text.translate(_SYMBOLS)
    # PUNCTUATION[6] (105) ``([^\.])(\.)([\]\)}>"\']*)\s*$`` is skipped: its tail class is a
    # subset of PUNCTUATION[0]'s, and the paddings in between neither create nor remove a
    # "non-'.' then '.' then tail characters" ending. So whenever it matches, PUNCTUATION[0]
    # already rewrote that ending to ``<x> . <tail> ``, and the rule can then match only with
    # an all-space tail, where it merely re-spaces the end.
    # PUNCTUATION[7] (108).
    if "?" in text:
        text = text.replace("?", " ? ")
    if "!" in text:
        text = text.replace("!", " ! ")
    # PUNCTUATION[8] (109) ``([^'])' `` -> ``\1 ' ``. There is no "''", so the replace below
    # differs only where the quote is at index 0 or follows a space: whitespace only.
    if has_quote and "' " in text:
        text = text.replace("' ", " ' ")
    if rare:
        # PUNCTUATION[9] (111-112).
        if "*" in text:
            text = text.replace("*", " * ")
        # PARENS_BRACKETS (117, 179-180).
        text = text.translate(_BRACKETS)
        # DOUBLE_DASHES (129, 187-188): str.replace is leftmost, non-overlapping, like re.sub.
        if "--" in text:
            text = text.replace("--", " -- ")
    # " " + text + " " (191); ENDING_QUOTES[3] (70) only collapses whitespace.
    text = f" {text} "
    if has_quote:
        # ENDING_QUOTES[4] and [5] (71-72).
        text = _CLITIC_1.sub(_space_before, text)
        if _CLITIC_2_HINT.search(text) is not None:
            text = _CLITIC_2.sub(_space_before, text)
    # CONTRACTIONS2 and CONTRACTIONS3 (196-199), NLTK's own compiled patterns; they see
    # spaces only as "a space is here", so the longer whitespace runs do not matter.
    if _contraction_hint(text):
        for regexp in _CONTRACTIONS:
            text = regexp.sub(r" \1 \2 ", text)
    return text.split()


def treebank_tokenize(text: str) -> list[str]:
    """Exactly ``nltk.word_tokenize(text, preserve_line=True)``, fast on plain dialogue text."""
    if isinstance(text, str):
        tokens = _fast_path(text)
        if tokens is not None:
            return tokens
    return word_tokenize(text, preserve_line=True)
