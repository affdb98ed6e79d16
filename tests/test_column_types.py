import pytest

from ingest.core.types import ColumnType, TypeSpec


@pytest.mark.parametrize(
    ("text", "spec"),
    [
        ("INTEGER", TypeSpec(ColumnType.INTEGER)),
        ("decimal", TypeSpec(ColumnType.DECIMAL)),
        ("DECIMAL(18,2)", TypeSpec(ColumnType.DECIMAL, 18, 2)),
        (" Decimal( 38 , 0 ) ", TypeSpec(ColumnType.DECIMAL, 38, 0)),
        ("DECIMAL(5,5)", TypeSpec(ColumnType.DECIMAL, 5, 5)),
    ],
)
def test_type_text_parses(text: str, spec: TypeSpec) -> None:
    assert TypeSpec.parse(text) == spec


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("DECIMAL(39,2)", "precision must be between 1 and 38"),
        ("DECIMAL(0,0)", "precision must be between 1 and 38"),
        ("DECIMAL(4,5)", "scale must be between 0 and the precision"),
        ("INTEGER(4,0)", "only DECIMAL takes a precision"),
        ("MONEY", "'MONEY' is not a column type"),
        ("DECIMAL(4)", "is not a column type"),
    ],
)
def test_bad_type_text_is_refused_with_the_reason(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TypeSpec.parse(text)


def test_wire_text_round_trips() -> None:
    assert str(TypeSpec.decimal(18, 2)) == "DECIMAL(18,2)"
    assert str(TypeSpec(ColumnType.DECIMAL)) == "DECIMAL"
    assert TypeSpec.parse(str(TypeSpec.decimal(7, 3))) == TypeSpec.decimal(7, 3)
    assert TypeSpec.decimal(7, 3).is_exact_decimal
    assert not TypeSpec(ColumnType.DECIMAL).is_exact_decimal
