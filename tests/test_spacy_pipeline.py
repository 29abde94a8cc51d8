"""The project's spaCy pipeline tags what visitors write, in any word form."""
import pytest
import spacy

from spacy_pipeline.build import build, load_patterns


@pytest.fixture(scope="module")
def nlp(tmp_path_factory):
    return spacy.load(build(tmp_path_factory.mktemp("spacy") / "spacy_en"))


def tagged(nlp, text):
    return {(ent.label_, ent.ent_id_) for ent in nlp(text.lower()).ents}


def test_techniques_in_several_spellings(nlp):
    assert ("technique", "hot stone") in tagged(nlp, "Are hot stones good for sciatica?")
    assert ("technique", "deep tissue") in tagged(nlp, "book me a Deep-Tissue massage")
    assert ("technique", "myofascial release") in tagged(nlp, "what does myofascial release do")


def test_body_parts_and_symptoms_through_plurals_and_verb_forms(nlp):
    found = tagged(nlp, "My legs are tingling and my buttocks ache")
    assert {("body_part", "leg"), ("symptom", "tingling"), ("body_part", "buttock"), ("symptom", "pain")} <= found


def test_lemmas_come_from_the_lookup_tables(nlp):
    assert [t.lemma_ for t in nlp("stretches feet")] == ["stretch", "foot"]


def test_a_malformed_patterns_file_is_reported_by_entry(tmp_path):
    bad = tmp_path / "patterns.yml"
    bad.write_text("technique:\n  swedish: swedish massage\n")
    with pytest.raises(ValueError, match="'technique' -> 'swedish' should be a list"):
        load_patterns(bad)
