"""SQLAlchemy tables. Importing this package registers every table on `Base.metadata`."""

from oms_api.models.api_keys import ApiKey
from oms_api.models.base import Base
from oms_api.models.channels import Channel
from oms_api.models.idempotency import IdempotencyRecord

__all__ = ["ApiKey", "Base", "Channel", "IdempotencyRecord"]
