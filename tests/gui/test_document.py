"""The document view-model and its undo commands, without any widget."""

from __future__ import annotations

import numpy as np
import pytest

from engine.errors import ImageError
from engine.images import Image
from engine.ops import transform
from gui.commands import TransformImage
from gui.document import Document
from tests.conftest import gradient_rgb


@pytest.fixture
def document(qapp) -> Document:
    doc = Document()
    doc.open(Image(gradient_rgb()), "photo.png")
    return doc


def test_open_resets_history_and_before(document: Document):
    document.apply(transform.flip(document.image), "Flip")
    fresh = Image(gradient_rgb(seed=3))
    document.open(fresh, "other.png")
    assert document.image is fresh
    assert document.before is None
    assert document.undo_stack.count() == 0
    assert document.path.name == "other.png"
    assert not document.modified


def test_apply_sets_before_and_undo_redo_restore_both(document: Document):
    original = document.image
    document.apply(transform.rotate90(original), "Rotate")
    rotated = document.image
    document.apply(transform.flip(rotated), "Flip")
    assert document.before is rotated
    np.testing.assert_array_equal(document.image.rgb, np.rot90(original.rgb, -1)[:, ::-1])

    document.undo_stack.undo()
    assert document.image is rotated and document.before is original
    document.undo_stack.undo()
    assert document.image is original and document.before is None
    assert not document.modified
    document.undo_stack.redo()
    assert document.image is rotated and document.before is original
    assert document.modified


def test_signals_fire_once_and_only_on_change(qtbot, document: Document):
    changes, images, befores = [], [], []
    document.stateChanged.connect(lambda: changes.append(1))
    document.imageChanged.connect(images.append)
    document.beforeChanged.connect(befores.append)
    document.set_state(document.image, document.before)  # nothing new
    assert changes == images == befores == []
    document.apply(transform.flip(document.image), "Flip")
    assert len(changes) == 1 and len(images) == 1 and len(befores) == 1


def test_revision_counts_every_change(document: Document):
    start = document.revision
    document.apply(transform.flip(document.image), "Flip")
    document.undo_stack.undo()
    assert document.revision == start + 2


def test_failed_transform_leaves_history_untouched(document: Document):
    before_count, image = document.undo_stack.count(), document.image
    with pytest.raises(ImageError, match="inside the 64 x 48 image"):
        document.undo_stack.push(TransformImage(document, "Crop", transform.crop, 50, 0, 40, 10))
    assert document.undo_stack.count() == before_count
    assert document.image is image


def test_transform_without_image_is_an_error(qapp):
    with pytest.raises(ImageError, match="no image open"):
        TransformImage(Document(), "Flip", transform.flip)
