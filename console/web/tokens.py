"""The console's side of the pinning service's access tokens: list them
(never the tokens themselves), make one (shown in this one answer) and
revoke one, from the Tokens section of the pins page.
"""

from console import tokens
from console.errors import HTTPError
from console.web.http import json_response, read_json_body


def token_name(req):
    """The body's ``name``, checked."""
    name = read_json_body(req, 4096).get("name")
    if not tokens.valid_name(name):
        raise HTTPError(400, "A token's name is 1 to 64 characters, without control characters.")
    return name


def handle_tokens(req):
    """GET /api/tokens: name, created, last used of each token."""
    return json_response({"tokens": tokens.list_tokens(req.db)})


def handle_token_add(req):
    """POST /api/tokens {"name"}: a new token, in this answer only."""
    name = token_name(req)
    try:
        made = tokens.add_token(req.db, name)
    except tokens.TokenNameTaken:
        raise HTTPError(409, "There is a token named {name} already.", name=name)
    return json_response({"success": True, "name": name, "token": made}, 201)


def handle_token_revoke(req):
    """POST /api/tokens/revoke {"name"}: the token opens nothing any more."""
    name = token_name(req)
    if not tokens.remove_token(req.db, name):
        raise HTTPError(404, "There is no token named {name}.", name=name)
    return json_response({"success": True})
