"""Slack mrkdwn built from what people typed: escaped text, mentions only of Slack user IDs, links that cannot
break out of their markup."""

from __future__ import annotations

import json
import re

import pytest

from sap_llm_release.notify.slack import (
    approval_blocks,
    approval_closed_text,
    escape,
    link,
    mention,
    release_started_blocks,
)

HOSTILE = "<!channel> & <@U0ADMIN> <https://evil.example|click me> <!subteam^S1|@oncall>"
# Slack parses a mention, a broadcast (<!here>, <!channel>, <!everyone>, <!subteam^…>) or a link only inside <...>
LIVE_MARKUP = re.compile(r"<[!@#]|<https?:")


def test_escape_turns_slack_control_characters_into_entities():
    assert escape("a & <b> c") == "a &amp; &lt;b&gt; c"
    assert escape("&lt;") == "&amp;lt;"  # an entity someone typed stays visible as typed


def test_a_mention_only_of_a_slack_user_id():
    assert mention("U0123ABC") == "<@U0123ABC>"
    assert mention("W0123ABC") == "<@W0123ABC>"
    assert mention("!channel") == "!channel"
    assert mention("<!here>") == "&lt;!here&gt;"


def test_a_link_cannot_end_its_markup_early():
    assert link("http://airflow/run|x>y", "run <1>") == "<http://airflow/run%7Cx%3Ey|run &lt;1&gt;>"


def _texts(blocks) -> list[str]:
    """Every mrkdwn / plain text in a Block Kit list."""
    found = []

    def walk(node):
        if isinstance(node, dict):
            if isinstance(node.get("text"), str):
                found.append(node["text"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(blocks)
    return found


def test_messages_built_from_hostile_input_hold_no_live_mention_or_link():
    started = release_started_blocks(f"sap_llm_release:{HOSTILE}", "sap-llm", "1.1.0", "rehearsal", HOSTILE,
                                     "http://airflow/run")
    approval = approval_blocks("rid", "go_live", HOSTILE, "1.1.0", [HOSTILE], "http://airflow/run")
    texts = _texts(started) + _texts(approval)
    assert any("&lt;!channel&gt;" in text for text in texts)
    # the only markup left is the Airflow run's link, written by the module itself
    assert [m.group(0) for text in texts for m in LIVE_MARKUP.finditer(text)] == ["<http:", "<http:"]


@pytest.mark.parametrize("channel, decided_by, who", [
    ("slack", "slack:U0APPROVER", "<@U0APPROVER>"),
    ("slack", "slack:<!channel>", "&lt;!channel&gt;"),
    ("airflow", "<!channel>", "&lt;!channel&gt;"),
])
def test_the_closing_line_mentions_only_a_slack_approver(channel, decided_by, who):
    text = approval_closed_text("go_live", "rejected", decided_by, channel, f"rejected by {HOSTILE}", "now")
    assert text.startswith(f"*go_live: rejected* by {who} ({channel}) at now: rejected by &lt;!channel&gt;")
    assert [m.group(0) for m in LIVE_MARKUP.finditer(text)] == (["<@"] if who.startswith("<@") else [])


def test_button_values_are_json_the_callback_can_read():
    blocks = approval_blocks("sap_llm_release:run<1>", "go_live", "send 100 %", "1.1.0", [], "http://run")
    value = json.loads(blocks[2]["elements"][0]["value"])
    assert value == {"release_id": "sap_llm_release:run<1>", "approval": "go_live"}
