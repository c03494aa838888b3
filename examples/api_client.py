"""A script an integrator might write against the generic record API (httpx only).

    FORMLOOM_USERNAME=admin FORMLOOM_PASSWORD=... python examples/api_client.py [BASE_URL]
    FORMLOOM_TOKEN=flt_... python examples/api_client.py [BASE_URL]   # a personal API token

BASE_URL defaults to http://127.0.0.1:8000. The user must be a platform admin (the script
installs an app). Signs in for a bearer token (POST /api/auth/token), installs the
example feedback app, submits a few surveys (one of them invalid, to show the error
shape), lists detractors with a JsonLogic filter page by page, and prints a record's history
after a guarded update.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import httpx

BASE = sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8000"
APP = Path(__file__).parent / "apps" / "patient_feedback.json"
SURVEYS = f"{BASE}/api/records/patient_feedback/survey"


def bearer_token(http: httpx.Client) -> str:
    """A personal token from the environment, or a bearer token for username + password."""
    token = os.environ.get("FORMLOOM_TOKEN")
    if token:
        return token
    signed_in = http.post(
        f"{BASE}/api/auth/token",
        json={
            "username": os.environ["FORMLOOM_USERNAME"],
            "password": os.environ["FORMLOOM_PASSWORD"],
        },
    )
    signed_in.raise_for_status()
    return str(signed_in.json()["access_token"])


def main() -> None:
    with httpx.Client(timeout=10) as http:
        http.headers["Authorization"] = f"Bearer {bearer_token(http)}"
        installed = http.post(
            f"{BASE}/api/apps/import",
            content=APP.read_bytes(),
            headers={"content-type": "application/json"},
        )
        installed.raise_for_status()
        print("import:", installed.json())

        for data in (
            {"score": 10, "liked": ["staff"]},
            {
                "score": 3,
                "complaint": "Waited 90 minutes.",
                "contact_me": True,
                "phone": "+86 139 0000 1234",
            },
            {"score": 5, "complaint": "Hard to book by phone."},
        ):
            response = http.post(SURVEYS, json={"data": data})
            response.raise_for_status()
            print("created", response.json()["id"], response.json()["data"]["category"])

        refused = http.post(SURVEYS, json={"data": {"score": 2}})
        print("refused:", refused.status_code, json.dumps(refused.json()["errors"], indent=1))

        detractors = {
            "filter": json.dumps({"==": [{"var": "category"}, "detractor"]}),
            "sort": "score",
            "limit": 1,
            "count": "true",
        }
        cursor = None
        while True:
            page = http.get(
                SURVEYS, params={**detractors, **({"cursor": cursor} if cursor else {})}
            ).json()
            for item in page["items"]:
                print("detractor:", item["data"]["score"], item["data"].get("complaint"))
            cursor = page["next_cursor"]
            if not cursor:
                break

        first = http.get(SURVEYS, params={"limit": 1}).json()["items"][0]
        url = f"{SURVEYS}/{first['id']}"
        etag = http.get(url).headers["etag"]
        updated = http.patch(
            url, json={"data": {"respondent": "Anonymous"}}, headers={"If-Match": etag}
        )
        print("update:", updated.status_code, "version", updated.json()["version"])
        for entry in http.get(f"{url}/history").json():
            print("history:", entry["version"], entry["operation"], entry["changed"])


if __name__ == "__main__":
    main()
