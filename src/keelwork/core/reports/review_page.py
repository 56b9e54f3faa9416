"""The ``/review`` page (pure): one queued prediction and the keys to judge it.

Server-rendered HTML with a small inline script and no external asset. Everything shown comes
from the item the service hands over (the prediction as the log stores it: redacted when
keel.yaml redacts PII) and is escaped. Keys: the key shown beside a label picks it (digits,
then letters), ``Enter`` records the picked label, ``s`` skips the item, ``n`` loads the next
one; an output without a list of labels gets a text box (``/`` focuses it, ``Escape`` leaves
it, ``Enter`` records what it holds: JSON, or else the text). The script POSTs JSON to
``/review/label`` and ``/review/skip`` with the page's ``x-keel-csrf`` token, then loads the
next item.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson

from keelwork.core.reports.charts import esc
from keelwork.core.review_formats import Choice

_CSS = (
    "body{font:15px/1.5 system-ui,sans-serif;background:#f1f5f9;color:#0f172a;margin:0}"
    "main{max-width:860px;margin:4vh auto;background:#fff;border:1px solid #e2e8f0;"
    "border-radius:12px;padding:20px 28px}h1{font-size:20px;margin:0 0 4px}"
    ".meta{color:#64748b;font-size:13px}table{border-collapse:collapse;width:100%;margin:8px 0}"
    "th,td{text-align:left;padding:4px 8px;border-bottom:1px solid #e2e8f0;vertical-align:top}"
    "th{width:30%;font-weight:600}td{white-space:pre-wrap;word-break:break-word}"
    ".answer{font-size:17px}.why{background:#fef9c3;border-radius:8px;padding:6px 10px}"
    "button{font:inherit;padding:6px 12px;margin:3px;border:1px solid #cbd5e1;"
    "border-radius:8px;background:#fff;cursor:pointer}"
    "button[aria-pressed=true]{background:#2563eb;color:#fff;border-color:#2563eb}"
    "kbd{font:12px ui-monospace,monospace;border:1px solid #94a3b8;border-radius:4px;"
    "padding:0 4px;margin-right:4px}input{font:inherit;padding:6px 8px;width:60%;"
    "border:1px solid #cbd5e1;border-radius:8px}.err{color:#b91c1c}.ok{color:#15803d}"
)

_SCRIPT = """(()=>{const m=document.querySelector('main'),pid=m.dataset.pid,tok=m.dataset.csrf;
const st=document.getElementById('status'),free=document.getElementById('free');
const btns=[...document.querySelectorAll('button.choice')];let chosen=null,busy=false;
function say(t,c){st.textContent=t;st.className=c||'';}
function pick(b){chosen=b;btns.forEach(x=>x.setAttribute('aria-pressed',x===b?'true':'false'));
say('picked '+b.dataset.text+': Enter records it');}
async function post(path,body){if(busy)return false;busy=true;say('sending...');
try{const r=await fetch(path,{method:'POST',credentials:'same-origin',headers:
{'content-type':'application/json','x-keel-csrf':tok},body:JSON.stringify(body)});
if(r.ok)return true;const j=await r.json().catch(()=>({}));
say(j.error||('refused: HTTP '+r.status),'err');return false;}
catch(e){say('not sent: '+e,'err');return false;}finally{busy=false;}}
async function submit(){if(!pid)return;let label;
if(free){const t=free.value.trim();if(!t){say('type a label first','err');return;}
try{label=JSON.parse(t);}catch(e){label=t;}}
else if(chosen){label=JSON.parse(chosen.dataset.label);}
else{say('pick a label first','err');return;}
if(await post('/review/label',{prediction_id:pid,label:label})){say('labelled','ok');
location.replace('/review');}}
async function skip(){if(pid&&await post('/review/skip',{prediction_id:pid})){
say('skipped','ok');location.replace('/review');}}
btns.forEach(b=>b.addEventListener('click',()=>pick(b)));
const sub=document.getElementById('submit');if(sub)sub.addEventListener('click',submit);
document.addEventListener('keydown',e=>{if(e.ctrlKey||e.metaKey||e.altKey)return;
if(free&&e.target===free){if(e.key==='Enter'){e.preventDefault();submit();}
else if(e.key==='Escape'){free.blur();}return;}
if(e.key==='Enter'){e.preventDefault();submit();}
else if(e.key==='s'){skip();}else if(e.key==='n'){location.replace('/review');}
else if(e.key==='/'&&free){e.preventDefault();free.focus();}
else{const b=btns.find(x=>x.dataset.key===e.key);if(b)pick(b);}});})();"""

#: The page's Content-Security-Policy: only its own inline script (by hash) and style run, and
#: it talks only to its own origin; an injected script would not run even if escaping failed.
CSP = ("default-src 'none'; style-src 'unsafe-inline'; script-src 'sha256-"
       + base64.b64encode(hashlib.sha256(_SCRIPT.encode()).digest()).decode()
       + "'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")


def _value(value: Any) -> str:
    if isinstance(value, str):
        return value
    return orjson.dumps(value, default=str).decode()


def _inputs(inputs: Any) -> str:
    if isinstance(inputs, Mapping):
        rows = "".join(f"<tr><th>{esc(k)}</th><td>{esc(_value(v))}</td></tr>"
                       for k, v in inputs.items())
        return f"<table aria-label=\"inputs\">{rows}</table>"
    return f"<table aria-label=\"inputs\"><tr><td>{esc(_value(inputs))}</td></tr></table>"


def _choices(choices: Sequence[Choice]) -> str:
    if not choices:
        return ('<p><label for="free">Label (JSON, or text):</label> <input id="free" '
                'autocomplete="off" autofocus> <button id="submit" type="button">'
                "<kbd>Enter</kbd>record</button></p>")
    buttons = "".join(
        f'<button type="button" class="choice" aria-pressed="false" '
        f'data-key="{esc(c.key or "")}" data-text="{esc(c.text)}" '
        f'data-label="{esc(orjson.dumps(c.value).decode())}">'
        + (f"<kbd>{esc(c.key)}</kbd>" if c.key else "") + f"{esc(c.text)}</button>"
        for c in choices)
    return (f'<p role="group" aria-label="labels">{buttons}</p><p><button id="submit" '
            'type="button"><kbd>Enter</kbd>record the picked label</button></p>')


def render_review_page(item: Mapping[str, Any] | None, *, reviewer: str,
                       choices: Sequence[Choice], counts: Mapping[str, int], csrf: str,
                       keys_on: bool) -> str:
    """The page for ``reviewer``: ``item`` (None: nothing left for them) and the keys.

    Args:
        item: The next item (:meth:`keelwork.service.review_desk.ReviewDesk.next`).
        reviewer: Who is reviewing (the API key's name when keys are on).
        choices: The labels to pick from (empty: a text box).
        counts: Items per state.
        csrf: The token the script sends in ``x-keel-csrf``.
        keys_on: Whether the server checks API keys (else everyone is one reviewer).
    """
    left = counts.get("open", 0)
    who = f"Reviewing as <b>{esc(reviewer)}</b>"
    if not keys_on:
        who += " (this server has no API keys: everyone who opens this page is this reviewer)"
    head = (f"<h1>Review queue</h1><p class=\"meta\">{who}. {left} open, "
            f"{counts.get('done', 0)} done.</p>")
    if item is None:
        body = ("<p>Nothing left to review for you.</p><p class=\"meta\"><kbd>n</kbd>look "
                "again</p>")
        pid = ""
    else:
        pid = str(item["prediction_id"])
        conf = item.get("confidence")
        conf_text = ("not scored when queued" if conf is None else f"{100 * conf:.0f}%")
        when = datetime.fromtimestamp(float(item["ts"]), UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        body = (
            f"<p class=\"meta\">prediction <code id=\"pid\">{esc(pid)}</code> &middot; "
            f"{esc(item['model'])} v{esc(item['version'])} &middot; {esc(when)}</p>"
            f"<p class=\"why\">Why: {esc(item['why'])}</p>"
            f"<p class=\"answer\">The model answered <b id=\"answer\">"
            f"{esc(_value(item['outputs']))}</b>; confidence <b>{esc(conf_text)}</b>.</p>"
            f"<h2>Inputs (as stored)</h2>{_inputs(item['inputs'])}"
            f"<h2>Your verdict: the true label</h2>{_choices(choices)}"
            "<p class=\"meta\">" + (f"<kbd>{esc(choices[0].key)}</kbd>&hellip; pick &middot; "
                                    if choices and choices[0].key else
                                    "<kbd>/</kbd>type &middot; <kbd>Esc</kbd>leave the box "
                                    "&middot; ")
            + "<kbd>Enter</kbd>record &middot; <kbd>s</kbd>skip &middot; <kbd>n</kbd>next</p>")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
            f"<title>Review queue</title><style>{_CSS}</style></head><body>"
            f"<main data-pid=\"{esc(pid)}\" data-csrf=\"{esc(csrf)}\">{head}{body}"
            "<p id=\"status\" role=\"status\" aria-live=\"polite\"></p></main>"
            f"<script>{_SCRIPT}</script></body></html>\n")


__all__ = ["CSP", "render_review_page"]
