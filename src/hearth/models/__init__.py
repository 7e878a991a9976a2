"""Every ORM model, imported here so Alembic sees the whole schema."""

from hearth.models.base import Base
from hearth.models.setting import Setting

__all__ = ["Base", "Setting"]
