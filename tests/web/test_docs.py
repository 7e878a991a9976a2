"""/docs: Swagger UI from the package, under the same policy as every page."""

from __future__ import annotations

from hearth.web.docs import ASSETS, assets_directory
from hearth.web.headers import CONTENT_SECURITY_POLICY
from tests.support.app import ClientFor


async def test_the_docs_page_loads_only_hearths_own_files(client_for: ClientFor) -> None:
    async with client_for() as client:
        page = await client.get("/docs")
        assets = {name: await client.get(f"/static/swagger-ui/{name}") for name in sorted(ASSETS)}
        starter = await client.get("/static/docs.js")
        not_an_asset = await client.get("/static/swagger-ui/__init__.py")
    assert page.status_code == 200
    assert page.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert "<script>" not in page.text  # no inline script: the policy would refuse it
    assert "//" not in page.text.replace("<!--", "")  # no other origin
    for name, response in assets.items():
        assert response.status_code == 200, name
        assert response.content == (assets_directory() / name).read_bytes()
        assert "no-store" not in response.headers.get("cache-control", "")
        assert f"/static/swagger-ui/{name}" in page.text
    assert assets["swagger-ui-bundle.js"].headers["content-type"].startswith("text/javascript")
    assert starter.status_code == 200
    assert "SwaggerUIBundle" in starter.text
    assert not_an_asset.status_code == 404
