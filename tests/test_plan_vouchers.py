"""The broker ranks by the tenant's net price: a voucher that pays a share of the price at a
center or region lowers the cost of the options there, and can change the best placement."""

from __future__ import annotations

import pytest

from suanli.jobs.spec import load_job
from suanli.network import load_network
from suanli.plan import plan
from suanli.plan.vouchers import VoucherTerms, terms_of

ROOT = __import__("pathlib").Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def lora():
    return load_job(ROOT / "examples" / "llama2-70b-lora.yaml"), load_network("east-west")


def _key(option) -> tuple[str, str, int]:
    return option.center, option.pool, option.count


def test_a_voucher_at_horinger_moves_the_cheapest_placement_there(lora):
    job, net = lora
    plain = plan(job, net, objective="cost")
    assert _key(plain.chosen) == ("qingyang", "910b", 8)
    with_voucher = plan(job, net, objective="cost",
                        vouchers=(VoucherTerms(0.3, centers=frozenset({"horinger"})),))
    chosen = with_voucher.chosen
    assert _key(chosen) == ("horinger", "h800", 8)
    gross = next(o for o in plain.options if _key(o) == _key(chosen))
    assert chosen.price_per_chip_hour == pytest.approx(0.7 * gross.price_per_chip_hour)
    assert chosen.compute_cost == pytest.approx(0.7 * gross.compute_cost)
    assert chosen.cost < plain.chosen.cost


def test_a_voucher_for_a_region_counts_at_each_of_its_centers(lora):
    job, net = lora
    result = plan(job, net, objective="cost",
                  vouchers=(VoucherTerms(0.5, regions=frozenset({"yangtze-river-delta"})),))
    assert result.chosen.region == "yangtze-river-delta"
    plain = {_key(o): o.price_per_chip_hour for o in plan(job, net, objective="cost").options}
    for o in result.options:
        expected = plain[_key(o)] * (0.5 if o.region == "yangtze-river-delta" else 1.0)
        assert o.price_per_chip_hour == pytest.approx(expected), o


def test_a_voucher_that_pays_nowhere_the_job_can_run_changes_nothing(lora):
    job, net = lora
    plain = plan(job, net, objective="cost").to_dict()
    elsewhere = plan(job, net, objective="cost",
                     vouchers=(VoucherTerms(0.9, centers=frozenset({"no-such-center"})),))
    assert elsewhere.to_dict() == plain


def test_shares_add_up_to_at_most_the_whole_price(lora):
    job, net = lora
    rows = [{"share": "0.8", "centers": [], "regions": [], "issuer": "a"},
            {"share": "0.7", "centers": [], "regions": [], "issuer": "b"}]
    free = plan(job, net, objective="cost", vouchers=terms_of(rows))
    assert all(o.price_per_chip_hour == 0 for o in free.options)
    assert free.chosen.cost == pytest.approx(free.chosen.egress_cost, abs=0.01)
