"""The pages' own files, read as text: each module of a readable size, one
set of Chinese terms, and the README naming the buttons as the pages do."""

import glob
import json
import os
import re

import pytest

import console.messages

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STATIC = os.path.join(ROOT, "static")


def read(*path):
    with open(os.path.join(ROOT, *path), encoding="utf-8") as f:
        return f.read()


def page_strings(lang):
    """{key: text} of the pages' strings for ``lang`` (static/strings-LANG.js)."""
    source = read("static", "strings-%s.js" % lang)
    return {key: json.loads('"%s"' % value)
            for key, value in re.findall(r'^ {2}"([^"]+)": "((?:[^"\\]|\\.)*)",$', source, re.M)}


def worker_messages_zh():
    """{English: Chinese} of the messages the worker stores, as static/i18n.js translates them."""
    source = read("static", "i18n.js")
    start = source.index("const FIXED_MESSAGES_ZH")
    return dict(re.findall(r'^ {2}"([^"]+)": "([^"]*)",$', source[start:source.index("}));", start)], re.M))


@pytest.mark.parametrize("path", sorted(glob.glob(os.path.join(STATIC, "*.js"))), ids=os.path.basename)
def test_every_page_module_is_under_800_lines(path):
    with open(path, encoding="utf-8") as f:
        assert sum(1 for _ in f) <= 800


def test_the_tables_hold_the_same_keys():
    english, chinese = page_strings("en"), page_strings("zh")
    assert len(english) > 200
    assert sorted(key for key in english if key not in chinese and not key.endswith("#one")) == []
    assert sorted(key for key in chinese if key not in english) == []


# Chinese readers of Kubo and the IPFS WebUI read 固定 (pin), 取消固定 (unpin),
# 已固定 (pinned): one set of terms, never the English word in a Chinese sentence.
ENGLISH_TERM = re.compile(r"\b(pin|pins|pinned|pinning|unpin|unpinned)\b", re.IGNORECASE)
MIXED_TERMS = ("撤销固定", "钉")


def chinese_sentences():
    pages = {"static/strings-zh.js %s" % key: text for key, text in page_strings("zh").items()}
    pages.update(("static/i18n.js %r" % key, text) for key, text in worker_messages_zh().items())
    server = {"console/messages.py %r" % key: text for key, text in console.messages.MESSAGES_ZH.items()}
    return dict(pages, **server)


def test_chinese_uses_one_set_of_terms_for_pins():
    sentences = chinese_sentences()
    assert len(sentences) > 250
    english = {where: text for where, text in sentences.items()
               if ENGLISH_TERM.search(re.sub(r"\{\w+\}|IPFSMASTER_\w+", "", text))}
    assert english == {}
    assert {where: text for where, text in sentences.items() if any(term in text for term in MIXED_TERMS)} == {}
    used = " ".join(sentences.values())
    assert "固定" in used and "取消固定" in used and "已固定" in used


def test_the_readme_names_the_sync_button_as_the_page_does():
    button = re.search(r'id="sync-button"[^>]*>([^<]+)<', read("static", "pins.html")).group(1)
    assert button == page_strings("en")["sync.button"]
    assert re.findall(r"press\s+\*\*([^*]+)\*\*", read("README.md")) == [button]
