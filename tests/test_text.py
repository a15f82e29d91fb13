"""Item templates and user profiles: hand-written expected strings on real MovieLens / Amazon items."""

from __future__ import annotations

import pandas as pd
import pytest

from distillrec.data.dataset import load_dataset
from distillrec.teachers.text import (
    ML_1M_USER_CODES,
    ItemTextTemplate,
    TemplateError,
    default_template,
    user_profile_text,
)


@pytest.fixture(scope="module")
def ml1m():
    return load_dataset("ml-1m")


@pytest.fixture(scope="module")
def ml100k():
    return load_dataset("ml-100k")


def _texts_by_id(dataset, template: ItemTextTemplate) -> dict[str, str]:
    return dict(zip(dataset.item_ids, template.render_items(dataset.item_text), strict=True))


def test_ml1m_items_render_with_genres_comma_joined(ml1m):
    template = default_template(ml1m.item_text.columns)
    assert template == ItemTextTemplate("{title}[. Genres: {genres}]")
    texts = _texts_by_id(ml1m, template)
    assert texts["1"] == "Toy Story (1995). Genres: Animation, Children's, Comedy"
    assert texts["73"] == "Misérables, Les (1995). Genres: Drama, Musical"
    assert texts["2858"] == "American Beauty (1999). Genres: Comedy, Drama"
    assert len(texts) == ml1m.n_items == 3416
    # row i of render_items is item index i
    assert template.render_items(ml1m.item_text)[0] == texts[ml1m.item_ids[0]]


def test_ml100k_items_and_the_unknown_genre_is_dropped(ml100k):
    texts = _texts_by_id(ml100k, default_template(ml100k.item_text.columns))
    assert texts["1"] == "Toy Story (1995). Genres: Animation, Children's, Comedy"
    assert texts["2"] == "GoldenEye (1995). Genres: Action, Adventure, Thriller"
    # genre "unknown" is ml-100k's flag for "no genre": the whole optional segment goes, no "Genres: ." left
    assert texts["1373"] == "Good Morning (1971)"
    kept = ItemTextTemplate("{title}[. Genres: {genres}]", list_ignore=())
    assert _texts_by_id(ml100k, kept)["1373"] == "Good Morning (1971). Genres: unknown"


def test_amazon_titles_are_verbatim_except_html_entities():
    beauty = load_dataset("amazon-beauty")
    template = default_template(beauty.item_text.columns)
    texts = _texts_by_id(beauty, template)
    assert texts["8"] == "Freeman Facial Charcoal & Black Sugar Polish Mask 6 oz."
    # a '|' inside a title is not a list separator: only list fields are split
    assert texts["833"] == (
        "Phytoworx Organic Hair Loss Shampoo | With Plant Stem Cells for Hair Recovery and Regrowth"
    )
    raw = _texts_by_id(beauty, ItemTextTemplate("{title}", unescape_html=False))
    assert raw["8"] == "Freeman Facial Charcoal &amp; Black Sugar Polish Mask 6 oz."


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        (
            {"title": "Heat (1995)", "genres": "Action|Crime", "tags": "pacino| de niro |"},
            "Heat (1995). Genres: Action, Crime. Tags: pacino, de niro",
        ),
        ({"title": "Heat (1995)", "genres": "", "tags": "pacino"}, "Heat (1995). Tags: pacino"),
        ({"title": "Heat (1995)", "genres": "Action", "tags": float("nan")}, "Heat (1995). Genres: Action"),
        ({"title": "Heat (1995)", "genres": " | ", "tags": None}, "Heat (1995)"),
    ],
)
def test_optional_segments_drop_with_their_labels(row, expected):
    template = ItemTextTemplate("{title}[. Genres: {genres}][. Tags: {tags}]")
    assert template.render(row) == expected


def test_segment_needs_all_its_fields_and_escapes_are_literal():
    template = ItemTextTemplate("[[{kind}]] {title}[ ({year}, {country})] {{ok}}")
    assert template.fields == ("kind", "title", "year", "country")
    full = {"kind": "film", "title": "Heat", "year": "1995", "country": "US"}
    assert template.render(full) == "[film] Heat (1995, US) {ok}"
    assert template.render({**full, "country": ""}) == "[film] Heat {ok}"


def test_unknown_field_names_field_and_available_columns(ml1m):
    template = ItemTextTemplate("{title} ({year})")
    with pytest.raises(TemplateError, match=r"'year'.*available columns: \['title', 'genres'\]"):
        template.render_items(ml1m.item_text)
    with pytest.raises(TemplateError, match="'year'"):
        template.render({"title": "Heat"})


@pytest.mark.parametrize(
    ("template", "problem"),
    [
        ("{title", "never closed"),
        ("{title}[. {genres}", "never closed"),
        ("{title}]", "closes no"),
        ("{title}}", "closes no"),
        ("[a [{b}]]", "do not nest"),
        ("{title}[ - ]", "holds no"),
        ("{}", "bad field name"),
    ],
)
def test_malformed_templates_raise(template, problem):
    with pytest.raises(TemplateError, match=problem):
        ItemTextTemplate(template).render({"title": "x", "genres": "y", "b": "z"})


def test_default_templates_per_column_set():
    assert (
        default_template(["title", "genres", "tags"]).template
        == "{title}[. Genres: {genres}][. Tags: {tags}]"
    )
    assert default_template(["title", "asin"]).template == "{title}"
    # any other columns: every one, `title` or `name` first, the others labelled and optional
    assert default_template(["description", "name"]).template == "{name}[. Description: {description}]"
    assert default_template(["brand_name"]).template == "[Brand name: {brand_name}]"
    with pytest.raises(TemplateError, match="the items have no text column"):
        default_template([])


def test_template_key_changes_with_every_setting():
    base = ItemTextTemplate()
    assert base.key == ItemTextTemplate().key
    assert base.key != ItemTextTemplate(list_join="; ").key
    assert base.key != ItemTextTemplate("{title}").key


def test_user_profile_from_real_ml1m_user(ml1m):
    attrs = ml1m.user_attrs.iloc[0].to_dict()  # user "1": F, age code 1, occupation code 10, zip 48067
    assert ml1m.user_ids[0] == "1" and attrs == {
        "gender": "F",
        "age": "1",
        "occupation": "10",
        "zip": "48067",
    }
    titles = ["Toy Story (1995)", "Monsters, Inc. (2001)", "Mulan (1998)"]
    text = user_profile_text(attrs, titles, max_items=2, codes=ML_1M_USER_CODES)
    assert text == (
        "User: gender female, age under 18, occupation K-12 student. "
        "Recent items: Monsters, Inc. (2001); Mulan (1998)."
    )
    assert user_profile_text(attrs, titles) == (
        "User: gender F, age 1, occupation 10. Recent items: Toy Story (1995); Monsters, Inc. (2001); Mulan (1998)."
    )


def test_user_profile_edge_cases():
    assert user_profile_text(None, ["Heat (1995)", " ", "Inc."]) == "Recent items: Heat (1995); Inc."
    assert user_profile_text({"age": "", "zip": "02139"}, []) == ""
    assert (
        user_profile_text({"age": 24, "gender": "M"}, [], items_label="Bought") == "User: age 24, gender M."
    )
    with pytest.raises(ValueError, match=r"occupation='99' is not a known code"):
        user_profile_text({"occupation": "99"}, [], codes=ML_1M_USER_CODES)
    with pytest.raises(ValueError, match="max_items"):
        user_profile_text(None, ["x"], max_items=0)


def test_render_items_on_a_frame_with_missing_values():
    frame = pd.DataFrame({"title": ["A (2000)", "B (2001)"], "genres": ["Drama", None]})
    assert ItemTextTemplate().render_items(frame) == ["A (2000). Genres: Drama", "B (2001)"]
