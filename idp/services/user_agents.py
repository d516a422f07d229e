"""What a browser's User-Agent says it is (browser and operating system), read with ua-parser."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from ua_parser import parse


@dataclass(frozen=True)
class Device:
    browser: str | None  # "Firefox 133", or None when the string names none
    os: str | None  # "Windows 10", "iOS 17.1", or None

    def __str__(self) -> str:
        return " · ".join(part for part in (self.browser, self.os) if part)


def _name(family: str | None, *versions: str | None) -> str | None:
    if not family or family == "Other":
        return None
    version = ".".join(v for v in versions if v)
    return f"{family} {version}" if version else family


@lru_cache(maxsize=1024)
def describe(user_agent: str | None) -> Device:
    """The browser (with its major version) and the operating system of a User-Agent."""
    result = parse((user_agent or "")[:300])
    browser = _name(result.user_agent.family, result.user_agent.major) if result.user_agent else None
    os = _name(result.os.family, result.os.major, result.os.minor) if result.os else None
    return Device(browser=browser, os=os)
