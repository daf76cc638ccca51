"""Bureau has a favicon (issue 12, item 6): the console's pages link to it, and
/favicon.ico, which browsers ask for anyway, leads to it. Served by a live
server, which serves static files as WhiteNoise does in production."""

import re

import pytest
import requests

from tests.operations.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_console_links_a_favicon_that_is_served_as_an_image(client, live_server):
    # given: an operator signed in to the console
    client.force_login(UserFactory(is_staff=True, is_superuser=True))

    # when: the index page and the login page are rendered
    index = client.get("/admin/")
    client.logout()
    login = client.get("/admin/login/")

    # then: both link the icon, and it is an image
    links = {
        page: re.search(r'<link rel="icon" type="image/png" href="([^"]+)"', page.content.decode())
        for page in (index, login)
    }
    assert all(links.values()), "no favicon link"
    icon = requests.get(live_server.url + links[index].group(1), timeout=10)
    assert icon.status_code == 200
    assert icon.headers["Content-Type"] == "image/png"
    assert icon.content.startswith(b"\x89PNG")


def test_favicon_ico_leads_to_the_icon(live_server):
    # when: a browser asks for the conventional path
    response = requests.get(f"{live_server.url}/favicon.ico", timeout=10)

    # then: it is redirected to the image, not a 404
    assert response.history and response.history[0].status_code == 302
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "image/png"
