"""Rich text values: the HTML subset a ``richtext`` field stores, and its plain text.

A rich text value is a fragment of HTML written by the form's small editor (bold, italic,
bulleted and numbered lists, links, paragraphs and line breaks). The server never trusts
what a client sends: :func:`sanitise` runs on every write (``RichTextField.normalise``), so
what is stored is always inside the allow-list below, and pages may insert a stored value
as HTML without escaping it.

Invariants of a stored value (``sanitise``'s output):

* only the tags in :data:`TAGS`; the only attribute is ``href`` on ``a`` (plus the
  ``rel="noopener noreferrer"`` the sanitiser adds to every link);
* a link's ``href`` is an absolute ``http``, ``https`` or ``mailto`` URL — anything else
  (``javascript:``, ``data:``, relative or protocol-relative addresses) loses its ``href``;
* no ``<script>``/``<style>`` element and none of its content, no event handler, ``style``
  or ``class`` attribute, no comment;
* sanitising a stored value again gives the same value (the function is idempotent).

The sanitising itself is done by ``nh3`` (the Ammonia HTML sanitiser, an HTML5 parser with
an allow-list), not by home-made parsing: an HTML sanitiser built on regular expressions is
how cross-site scripting gets in. :func:`plain_text` is what lists, CSV exports, reports
and length limits read: the words without the tags, one line per paragraph or list item.
"""

from __future__ import annotations

import html
import re
from typing import Final

import nh3

#: The tags a stored value may hold (what the editor writes; browsers write div and br
#: for new lines in contenteditable, b/i for Ctrl+B/I).
TAGS: Final = frozenset({"p", "div", "br", "b", "strong", "i", "em", "u", "ul", "ol", "li", "a"})
#: Attributes kept, per tag.
ATTRIBUTES: Final = {"a": {"href"}}
#: The only URL schemes a link may use.
URL_SCHEMES: Final = frozenset({"http", "https", "mailto"})
#: Elements removed together with everything inside them.
REMOVED_WITH_CONTENT: Final = frozenset({"script", "style"})

# Where a line ends in the plain text: after a block or a line break. Applied to the
# sanitiser's output only (well-formed, attributes quoted), never to raw input.
_LINE_END = re.compile(r"(<br\s*/?>|</p>|</div>|</li>|</ul>|</ol>)", re.IGNORECASE)
_LINE_START = re.compile(r"(<(?:p|div|ul|ol|li)\b)", re.IGNORECASE)
_BLANK_LINES = re.compile(r"[ \t]*\n[ \t\n]*")


def sanitise(value: str) -> str:
    """``value`` reduced to the allowed HTML subset (see the module's invariants)."""
    cleaned: str = nh3.clean(
        value,
        tags=set(TAGS),
        clean_content_tags=set(REMOVED_WITH_CONTENT),
        attributes={tag: set(names) for tag, names in ATTRIBUTES.items()},
        url_schemes=set(URL_SCHEMES),
        url_relative="deny",
        strip_comments=True,
        link_rel="noopener noreferrer",
    )
    return cleaned.strip()


def plain_text(value: str) -> str:
    """The text of a (sanitised) rich text value: no tags, entities decoded, one line per
    paragraph, list item or line break, no blank lines, trimmed."""
    marked = _LINE_START.sub(lambda match: "\n" + match.group(0), value)
    marked = _LINE_END.sub(lambda match: match.group(0) + "\n", marked)
    text = html.unescape(
        nh3.clean(marked, tags=set(), clean_content_tags=set(REMOVED_WITH_CONTENT))
    )
    return _BLANK_LINES.sub("\n", text.replace("\xa0", " ")).strip()
