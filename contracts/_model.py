"""Canonical settlement record: the union of 4101 and 4101A, plus identity and summary.

Generated from data/fields.csv (then edited only by regeneration). Fields are lenient on
purpose (no lengths, no dictionaries): the rule engine reports those. Timestamps are naive
datetimes in China Standard Time, as the national text carries no offset (`contracts.CST`
attaches it); `天/小时/分钟` durations stay text (`contracts.parse_duration`).
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import msgspec

__all__ = [
    "Bldinfo",
    "Diseinfo",
    "Envelope",
    "Icuinfo",
    "Iteminfo",
    "Oprninfo",
    "Opspdiseinfo",
    "Payinfo",
    "Setlinfo",
    "Settlement",
]


class Setlinfo(msgspec.Struct, kw_only=True, gc=False):
    """Node `setlinfo` (canonical)."""

    psn_no: str | None = None  # 人员编号
    mdtrt_id: str | None = None  # 就诊ID
    setl_id: str | None = None  # 结算ID
    hi_no: str | None = None  # 医保编号
    medcasno: str | None = None  # 病案号
    dcla_time: datetime | None = None  # 申报时间
    ntly: str | None = None  # 国籍
    prfs: str | None = None  # 职业
    curr_addr: str | None = None  # 现住址
    emp_name: str | None = None  # 单位名称
    emp_addr: str | None = None  # 单位地址
    emp_tel: str | None = None  # 单位电话
    poscode: str | None = None  # 邮编
    coner_name: str | None = None  # 联系人姓名
    patn_rlts: str | None = None  # 与患者关系
    coner_addr: str | None = None  # 联系人地址
    coner_tel: str | None = None  # 联系人电话
    nwb_adm_type: str | None = None  # 新生儿入院类型
    nwb_bir_wt: Decimal | None = None  # 新生儿出生体重
    nwb_adm_wt: Decimal | None = None  # 新生儿入院体重
    mul_nwb_bir_wt: str | None = None  # 多新生儿出生体重
    mul_nwb_adm_wt: str | None = None  # 多新生儿入院体重
    opsp_diag_caty: str | None = None  # 门诊慢特病诊断科别
    opsp_mdtrt_date: date | None = None  # 门诊慢特病就诊日期
    adm_way: str | None = None  # 入院途径
    trt_type: str | None = None  # 治疗类别
    adm_time: datetime | None = None  # 入院时间
    refldept_dept: str | None = None  # 转科科别
    dscg_time: datetime | None = None  # 出院时间
    dscg_caty: str | None = None  # 出院科别
    otp_wm_dise: str | None = None  # 门(急)诊诊断(西医诊断)
    wm_dise_code: str | None = None  # 西医疾病代码
    otp_tcm_dise: str | None = None  # 门(急)诊诊断(中医诊断)
    tcm_dise_code: str | None = None  # 中医疾病代码
    vent_used_dura: str | None = None  # 呼吸机使用时长
    pwcry_bfadm_coma_dura: str | None = None  # 颅脑损伤患者入院前昏迷时长
    pwcry_afadm_coma_dura: str | None = None  # 颅脑损伤患者入院后昏迷时长
    spga_nurscare_days: int | None = None  # 特级护理天数
    lv1_nurscare_days: int | None = None  # 一级护理天数
    scd_nurscare_days: int | None = None  # 二级护理天数
    lv3_nurscare_days: int | None = None  # 三级护理天数
    dscg_way: str | None = None  # 离院方式
    acp_medins_name: str | None = None  # 拟接收机构名称
    acp_optins_code: str | None = None  # 拟接收机构代码
    bill_code: str | None = None  # 票据代码
    bill_no: str | None = None  # 票据号码
    biz_sn: str | None = None  # 业务流水号
    days_rinp_flag_31: str | None = None  # 出院31天内再住院计划标志
    days_rinp_pup_31: str | None = None  # 出院31天内再住院计划目的
    chfpdr_code: str | None = None  # 主诊医师代码
    setl_begn_date: date | None = None  # 结算开始日期
    setl_end_date: date | None = None  # 结算结束日期
    medins_fill_dept: str | None = None  # 医疗机构填报部门
    medins_fill_psn: str | None = None  # 医疗机构填报人
    resp_nurs_code: str | None = None  # 责任护士代码
    stas_type: str | None = None  # 状态分类
    hi_paymtd: str | None = None  # 医保支付方式
    adm_dept_codg: str | None = None  # 入院科室编码
    adm_dept_name: str | None = None  # 入院科室名称
    dscg_dept_codg: str | None = None  # 出院科室编码
    dscg_dept_name: str | None = None  # 出院科室名称
    fixmedins_name: str | None = None  # 定点医药机构名称
    fixmedins_code: str | None = None  # 定点医药机构编号
    hi_setl_lv: str | None = None  # 医保结算等级
    psn_name: str | None = None  # 人员姓名
    gend: str | None = None  # 性别
    brdy: date | None = None  # 出生日期
    age: Decimal | None = None  # 年龄
    nwb_age: int | None = None  # (年龄不足1周岁)年龄
    naty: str | None = None  # 民族
    patn_cert_type: str | None = None  # 患者证件类别
    certno: str | None = None  # 证件号码
    hi_type: str | None = None  # 医保类型
    insuplc: str | None = None  # 参保地
    sp_psn_type: str | None = None  # 特殊人员类型
    ipt_med_type: str | None = None  # 住院医疗类型
    adm_caty: str | None = None  # 入院科别
    act_ipt_days: int | None = None  # 实际住院天数
    diag_code_cnt: int | None = None  # 诊断代码计数
    oprn_oprt_code_cnt: int | None = None  # 手术操作代码计数
    bld_cat: str | None = None  # 输血品种
    bld_amt: Decimal | None = None  # 输血量
    bld_unt: str | None = None  # 输血计量单位
    chfpdr_name: str | None = None  # 主诊医师姓名
    psn_selfpay: Decimal | None = None  # 个人自付
    psn_ownpay: Decimal | None = None  # 个人自费
    acct_pay: Decimal | None = None  # 个人账户支出
    psn_cashpay: Decimal | None = None  # 个人现金支付
    hsorg: str | None = None  # 医保机构
    hsorg_opter: str | None = None  # 医保机构经办人
    insutype: str | None = None  # 险种类型
    medfee_sumamt: Decimal | None = None  # 医疗费总额
    fund_pay_sumamt: Decimal | None = None  # 基金支付总额
    hifp_pay: Decimal | None = None  # 统筹基金支出
    psn_cash_pay: Decimal | None = None  # 个人现金支出
    setl_time: datetime | None = None  # 结算时间


class Diseinfo(msgspec.Struct, kw_only=True, gc=False):
    """Node `diseinfo` (canonical)."""

    diag_type: str | None = None  # 诊断类别
    diag_code: str | None = None  # 诊断代码
    diag_name: str | None = None  # 诊断名称
    adm_cond_type: str | None = None  # 入院病情类型
    maindiag_flag: str | None = None  # 主诊断标志


class Oprninfo(msgspec.Struct, kw_only=True, gc=False):
    """Node `oprninfo` (canonical)."""

    oprn_oprt_type: str | None = None  # 手术操作类别
    oprn_oprt_name: str | None = None  # 手术操作名称
    oprn_oprt_code: str | None = None  # 手术操作代码
    anst_way: str | None = None  # 麻醉方式
    oper_dr_code: str | None = None  # 术者医师代码
    anst_dr_code: str | None = None  # 麻醉医师代码
    oprn_oprt_begntime: datetime | None = None  # 手术操作开始时间
    oprn_oprt_endtime: datetime | None = None  # 手术操作结束时间
    anst_begntime: datetime | None = None  # 麻醉开始时间
    anst_endtime: datetime | None = None  # 麻醉结束时间
    oprn_oprt_date: date | None = None  # 手术操作日期
    oper_dr_name: str | None = None  # 术者医师姓名
    anst_dr_name: str | None = None  # 麻醉医师姓名


class Icuinfo(msgspec.Struct, kw_only=True, gc=False):
    """Node `icuinfo` (canonical)."""

    scs_cutd_ward_type: str | None = None  # 重症监护病房类型
    scs_cutd_inpool_time: datetime | None = None  # 重症监护进入时间
    scs_cutd_exit_time: datetime | None = None  # 重症监护退出时间
    scs_cutd_sum_dura: str | None = None  # 重症监护合计时长


class Bldinfo(msgspec.Struct, kw_only=True, gc=False):
    """Node `bldinfo` (canonical)."""

    bld_cat: str | None = None  # 输血品种
    bld_amt: Decimal | None = None  # 输血量
    bld_unt: str | None = None  # 输血计量单位


class Opspdiseinfo(msgspec.Struct, kw_only=True, gc=False):
    """Node `opspdiseinfo` (canonical)."""

    oprn_oprt_name: str | None = None  # 手术操作名称
    oprn_oprt_code: str | None = None  # 手术操作代码
    diag_name: str | None = None  # 诊断名称
    diag_code: str | None = None  # 诊断代码
    maindiag_flag: str | None = None  # 主诊断标志


class Payinfo(msgspec.Struct, kw_only=True, gc=False):
    """Node `payinfo` (canonical)."""

    fund_pay_type: str | None = None  # 基金支付类型
    fund_payamt: Decimal | None = None  # 基金支付金额


class Iteminfo(msgspec.Struct, kw_only=True, gc=False):
    """Node `iteminfo` (canonical)."""

    med_chrgitm: str | None = None  # 医疗收费项目
    amt: Decimal | None = None  # 金额
    claa_sumfee: Decimal | None = None  # 甲类费用合计
    clab_amt: Decimal | None = None  # 乙类金额
    fulamt_ownpay_amt: Decimal | None = None  # 全自费金额
    oth_amt: Decimal | None = None  # 其他金额


class Settlement(msgspec.Struct, kw_only=True, gc=False):
    """The `input` of a 4101/4101A upload: one settlement list, identity and summary included."""

    setlinfo: Setlinfo = msgspec.field(default_factory=Setlinfo)
    diseinfo: list[Diseinfo] = msgspec.field(default_factory=list)
    oprninfo: list[Oprninfo] = msgspec.field(default_factory=list)
    icuinfo: list[Icuinfo] = msgspec.field(default_factory=list)
    bldinfo: list[Bldinfo] = msgspec.field(default_factory=list)
    opspdiseinfo: list[Opspdiseinfo] = msgspec.field(default_factory=list)
    payinfo: list[Payinfo] = msgspec.field(default_factory=list)
    iteminfo: list[Iteminfo] = msgspec.field(default_factory=list)


class Envelope(msgspec.Struct, kw_only=True, gc=False):
    """National request envelope around one settlement list."""

    infno: str | None = None  # 交易编号
    msgid: str | None = None  # 发送方报文ID
    mdtrtarea_admvs: str | None = None  # 就医地医保区划
    insuplc_admdvs: str | None = None  # 参保地医保区划
    recer_sys_code: str | None = None  # 接收方系统代码
    dev_no: str | None = None  # 设备编号
    dev_safe_info: str | None = None  # 设备安全信息
    cainfo: str | None = None  # 数字签名信息
    signtype: str | None = None  # 签名类型
    infver: str | None = None  # 接口版本号
    opter_type: str | None = None  # 经办人类别
    opter: str | None = None  # 经办人
    opter_name: str | None = None  # 经办人姓名
    inf_time: datetime | None = None  # 交易时间
    fixmedins_code: str | None = None  # 定点医药机构编号
    fixmedins_name: str | None = None  # 定点医药机构名称
    sign_no: str | None = None  # 交易签到流水号
    input: Settlement = msgspec.field(default_factory=Settlement)
