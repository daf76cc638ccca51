import pytest

from approvals.templating import (
    html_description_list,
    html_list,
    html_table,
    replace_template_variables,
    template_variables,
)


def test_variables_are_found_and_filled_with_escaping():
    content = "<h1>{{ 제목 }}</h1><p>{{설명}}</p>{{표}}"

    filled = replace_template_variables(
        content,
        {
            "제목": "<b>PO</b>",
            "설명": "a & b",
            "표": html_table([{"n": "<i>x</i>"}], [("n", "Name")]),
        },
    )

    assert template_variables(content) == {"제목", "설명", "표"}
    assert filled == (
        "<h1>&lt;b&gt;PO&lt;/b&gt;</h1><p>a &amp; b</p>"
        '<table border="1" cellpadding="4" style="border-collapse:collapse"><thead><tr><th>Name</th></tr></thead>'
        "<tbody><tr><td>&lt;i&gt;x&lt;/i&gt;</td></tr></tbody></table>"
    )


def test_a_missing_variable_is_an_error_not_a_blank():
    with pytest.raises(KeyError):
        replace_template_variables("{{a}} {{b}}", {"a": 1})


def test_description_list_and_lists_escape_their_values():
    assert html_description_list({"Vendor": "<x>"}) == "<dl><dt>Vendor</dt><dd>&lt;x&gt;</dd></dl>"
    assert html_list(["a", "<b>"]) == "<ul><li>a</li><li>&lt;b&gt;</li></ul>"
    assert html_list([1, 2], ordered=True) == "<ol><li>1</li><li>2</li></ol>"
    assert html_table([{"a": 1}], [{"key": "a", "label": "A"}, "b"]).count("<td>") == 2
