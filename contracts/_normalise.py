"""Fill the canonical record's derived fields, whatever the upload flavour.

4101 carries no settlement summary (it has `payinfo`/`iteminfo` instead), and 4101 names the
cash payment `psn_cashpay` where the settlement transaction says `psn_cash_pay`. After
`normalise` every record has the same attributes filled, so rules and downstream workers
read one name. Only empty attributes are filled: normalising twice changes nothing.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from contracts._model import Bldinfo, Settlement

__all__ = ["ACCOUNT_FUND_PAY_TYPE", "HI_TYPE_TO_INSUTYPE", "is_legacy", "normalise"]

FEN = Decimal("0.01")
#: fund_pay_type of the personal account: counted in acct_pay, not in fund_pay_sumamt
ACCOUNT_FUND_PAY_TYPE = "310200"
#: mdcs_type (4101 hi_type) codes that name the same scheme as an insutype code
HI_TYPE_TO_INSUTYPE = {"310": "310", "340": "340", "390": "390"}


def is_legacy(infno: str | None) -> bool:
    """True for a 4101 (legacy) upload; anything else is treated as 4101A."""
    return infno == "4101"


def _fen(amount: Decimal) -> Decimal:
    """Round half-up to the fen; an absurd magnitude is left as is (FMT_NUMBER reports it)."""
    try:
        return amount.quantize(FEN, rounding=ROUND_HALF_UP)
    except ArithmeticError:
        return amount


def normalise(settlement: Settlement, infno: str | None = "4101A") -> Settlement:
    """Fill derived fields in place and return the same record."""
    sl = settlement.setlinfo
    if sl.psn_cash_pay is None:
        sl.psn_cash_pay = sl.psn_cashpay
    elif sl.psn_cashpay is None:
        sl.psn_cashpay = sl.psn_cash_pay
    if not is_legacy(infno):
        return settlement
    if sl.medfee_sumamt is None and settlement.iteminfo:
        amounts = [i.amt for i in settlement.iteminfo if i.amt is not None and i.amt.is_finite()]
        if amounts:
            sl.medfee_sumamt = _fen(sum(amounts, Decimal(0)))
    if sl.fund_pay_sumamt is None and settlement.payinfo:
        funds = [
            p.fund_payamt
            for p in settlement.payinfo
            if p.fund_payamt is not None
            and p.fund_payamt.is_finite()
            and p.fund_pay_type != ACCOUNT_FUND_PAY_TYPE
        ]
        if funds:
            sl.fund_pay_sumamt = _fen(sum(funds, Decimal(0)))
    if sl.insutype is None and sl.hi_type is not None:
        sl.insutype = HI_TYPE_TO_INSUTYPE.get(sl.hi_type)
    if not settlement.bldinfo and sl.bld_cat:
        settlement.bldinfo = [Bldinfo(bld_cat=sl.bld_cat, bld_amt=sl.bld_amt, bld_unt=sl.bld_unt)]
    return settlement
