"""Typed keys of the resources the gateway's app holds."""

from aiohttp import web

from gateway.delivery import Delivery
from gateway.publisher import KafkaPublisher
from schemas.settings import Settings

SETTINGS = web.AppKey("settings", Settings)
PUBLISHER = web.AppKey("publisher", KafkaPublisher)
DELIVERY = web.AppKey("delivery", Delivery)
