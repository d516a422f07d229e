"""An HTML form parser for tests and the benchmark: the forms of a page (action, method,
fields as a browser would send them, every input and button), the texts of elements with
an id, the targets of links with an id, and the texts of role=alert elements."""

from __future__ import annotations

from html.parser import HTMLParser


class FormParser(HTMLParser):
    """Collects forms (action, fields) and texts of elements with an id."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.forms: dict[str, dict] = {}
        self._form = None
        self.ids: dict[str, str] = {}
        self._stack: list[str | None] = []
        self.alert_texts: list[str] = []
        self._alert_depth = 0
        self.images: dict[str, str] = {}
        self.links: dict[str, str] = {}

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            self._form = {"action": a.get("action", ""), "method": (a.get("method") or "get").lower(), "fields": {},
                          "buttons": [], "inputs": [], "button_attrs": [],
                          "attrs": {k: (v if v is not None else "") for k, v in a.items()}}
            self.forms[a.get("id") or f"form{len(self.forms)}"] = self._form
        elif tag == "input" and self._form is not None:
            self._form["inputs"].append({k: (v if v is not None else "") for k, v in a.items()})
            if not a.get("name") or (a.get("type") in ("checkbox", "radio") and "checked" not in a):
                pass
            else:
                self._form["fields"][a["name"]] = a.get("value", "")
        elif tag == "button" and self._form is not None:
            self._form["buttons"].append((a.get("name"), a.get("value")))
            self._form["button_attrs"].append({k: (v if v is not None else "") for k, v in a.items()})
        if tag == "img" and a.get("id"):
            self.images[a["id"]] = a.get("src", "")
        if tag == "a" and a.get("id"):
            self.links[a["id"]] = a.get("href", "")
        if tag not in ("input", "img", "br", "meta", "link"):
            self._stack.append(a.get("id"))
            if a.get("role") == "alert":
                self._alert_depth = len(self._stack)
                self.alert_texts.append("")

    def handle_endtag(self, tag):
        if tag == "form":
            self._form = None
        if tag not in ("input", "img", "br", "meta", "link") and self._stack:
            if self._alert_depth == len(self._stack):
                self._alert_depth = 0
            self._stack.pop()

    def handle_data(self, data):
        for element_id in self._stack:
            if element_id:
                self.ids[element_id] = self.ids.get(element_id, "") + data
        if self._alert_depth:
            self.alert_texts[-1] += data


def parse(html: str) -> FormParser:
    parser = FormParser()
    parser.feed(html)
    return parser
