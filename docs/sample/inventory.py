"""A small inventory model, used as Forecode's sample folder."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal


@dataclass
class Item:
    sku: str
    name: str
    price: Decimal
    quantity: int = 0
    tags: list[str] = field(default_factory=list)

    def value(self) -> Decimal:
        return self.price * self.quantity


class Inventory:
    def __init__(self) -> None:
        self._items: dict[str, Item] = {}

    def add(self, item: Item) -> None:
        if item.sku in self._items:
            raise KeyError(f"duplicate SKU {item.sku!r}")
        self._items[item.sku] = item

    def restock(self, sku: str, count: int) -> int:
        item = self._items[sku]
        item.quantity += count  # counts can only grow here
        return item.quantity

    def total_value(self) -> Decimal:
        return sum((i.value() for i in self._items.values()), Decimal(0))

    def tagged(self, tag: str) -> list[Item]:
        return [i for i in self._items.values() if tag in i.tags]


if __name__ == "__main__":
    stock = Inventory()
    stock.add(Item("A-1", "Widget", Decimal("2.50"), 4, ["small"]))
    print(stock.total_value())
