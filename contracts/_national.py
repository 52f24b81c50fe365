"""National wire shapes of 4101 and 4101A, with the spec's types and lengths.

Generated from data/fields.csv (columns in4101A / in4101). The gateway validates with the
canonical model; these types document the national contract and let a caller encode a
record in the exact national shape (`msgspec.convert(..., Input4101A)`).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

import msgspec

from contracts._timefmt import DATE_PATTERN, DATETIME_PATTERN

DateText = Annotated[str, msgspec.Meta(pattern=DATE_PATTERN, description="yyyy-MM-dd")]
DateTimeText = Annotated[
    str, msgspec.Meta(pattern=DATETIME_PATTERN, description="yyyy-MM-dd HH:mm:ss")
]
Str3 = Annotated[str, msgspec.Meta(max_length=3)]
Str17 = Annotated[str, msgspec.Meta(max_length=17)]
Str5 = Annotated[str, msgspec.Meta(max_length=5)]
Str6 = Annotated[str, msgspec.Meta(max_length=6)]
Str10 = Annotated[str, msgspec.Meta(max_length=10)]
Str12 = Annotated[str, msgspec.Meta(max_length=12)]
Str20 = Annotated[str, msgspec.Meta(max_length=20)]
Str30 = Annotated[str, msgspec.Meta(max_length=30)]
Str40 = Annotated[str, msgspec.Meta(max_length=40)]
Str50 = Annotated[str, msgspec.Meta(max_length=50)]
Str100 = Annotated[str, msgspec.Meta(max_length=100)]
Str200 = Annotated[str, msgspec.Meta(max_length=200)]
Str500 = Annotated[str, msgspec.Meta(max_length=500)]
Str1024 = Annotated[str, msgspec.Meta(max_length=1024)]
Str2000 = Annotated[str, msgspec.Meta(max_length=2000)]


class Setlinfo4101A(msgspec.Struct, kw_only=True):
    """Node `setlinfo` of national 4101A."""

    psn_no: Str30 | None = None  # 人员编号
    mdtrt_id: Str30 | None = None  # 就诊ID
    setl_id: Str30 | None = None  # 结算ID
    hi_no: Str30 | None = None  # 医保编号
    medcasno: Str40 | None = None  # 病案号
    dcla_time: DateTimeText | None = None  # 申报时间
    ntly: Str6 | None = None  # 国籍
    prfs: Str6 | None = None  # 职业
    curr_addr: Str200 | None = None  # 现住址
    emp_name: Str200 | None = None  # 单位名称
    emp_addr: Str200 | None = None  # 单位地址
    emp_tel: Str50 | None = None  # 单位电话
    poscode: Str6 | None = None  # 邮编
    coner_name: Str50 | None = None  # 联系人姓名
    patn_rlts: Str6 | None = None  # 与患者关系
    coner_addr: Str200 | None = None  # 联系人地址
    coner_tel: Str50 | None = None  # 联系人电话
    nwb_adm_type: Str50 | None = None  # 新生儿入院类型
    nwb_bir_wt: Decimal | None = None  # 新生儿出生体重
    nwb_adm_wt: Decimal | None = None  # 新生儿入院体重
    mul_nwb_bir_wt: Str50 | None = None  # 多新生儿出生体重
    mul_nwb_adm_wt: Str50 | None = None  # 多新生儿入院体重
    opsp_diag_caty: Str50 | None = None  # 门诊慢特病诊断科别
    opsp_mdtrt_date: DateText | None = None  # 门诊慢特病就诊日期
    adm_way: Str30 | None = None  # 入院途径
    trt_type: Str3 | None = None  # 治疗类别
    adm_time: DateTimeText | None = None  # 入院时间
    refldept_dept: Str50 | None = None  # 转科科别
    dscg_time: DateTimeText | None = None  # 出院时间
    dscg_caty: Str6 | None = None  # 出院科别
    otp_wm_dise: Str200 | None = None  # 门(急)诊诊断(西医诊断)
    wm_dise_code: Str20 | None = None  # 西医疾病代码
    otp_tcm_dise: Str200 | None = None  # 门(急)诊诊断(中医诊断)
    tcm_dise_code: Str20 | None = None  # 中医疾病代码
    vent_used_dura: Str10 | None = None  # 呼吸机使用时长
    pwcry_bfadm_coma_dura: Str10 | None = None  # 颅脑损伤患者入院前昏迷时长
    pwcry_afadm_coma_dura: Str10 | None = None  # 颅脑损伤患者入院后昏迷时长
    spga_nurscare_days: int | None = None  # 特级护理天数
    lv1_nurscare_days: int | None = None  # 一级护理天数
    scd_nurscare_days: int | None = None  # 二级护理天数
    lv3_nurscare_days: int | None = None  # 三级护理天数
    dscg_way: Str3 | None = None  # 离院方式
    acp_medins_name: Str100 | None = None  # 拟接收机构名称
    acp_optins_code: Str30 | None = None  # 拟接收机构代码
    bill_code: Str50 | None = None  # 票据代码
    bill_no: Str30 | None = None  # 票据号码
    biz_sn: Str50 | None = None  # 业务流水号
    days_rinp_flag_31: Str3 | None = None  # 出院31天内再住院计划标志
    days_rinp_pup_31: Str200 | None = None  # 出院31天内再住院计划目的
    chfpdr_code: Str30 | None = None  # 主诊医师代码
    setl_begn_date: DateText | None = None  # 结算开始日期
    setl_end_date: DateText | None = None  # 结算结束日期
    medins_fill_dept: Str100 | None = None  # 医疗机构填报部门
    medins_fill_psn: Str50 | None = None  # 医疗机构填报人
    resp_nurs_code: Str50 | None = None  # 责任护士代码
    stas_type: Str10 | None = None  # 状态分类
    hi_paymtd: Str3 | None = None  # 医保支付方式
    adm_dept_codg: Str30 | None = None  # 入院科室编码
    adm_dept_name: Str100 | None = None  # 入院科室名称
    dscg_dept_codg: Str30 | None = None  # 出院科室编码
    dscg_dept_name: Str100 | None = None  # 出院科室名称


class Diseinfo4101A(msgspec.Struct, kw_only=True):
    """Node `diseinfo` of national 4101A."""

    diag_type: Str3 | None = None  # 诊断类别
    diag_code: Str20 | None = None  # 诊断代码
    diag_name: Str100 | None = None  # 诊断名称
    adm_cond_type: Str3 | None = None  # 入院病情类型
    maindiag_flag: Str3 | None = None  # 主诊断标志


class Oprninfo4101A(msgspec.Struct, kw_only=True):
    """Node `oprninfo` of national 4101A."""

    oprn_oprt_type: Str3 | None = None  # 手术操作类别
    oprn_oprt_name: Str500 | None = None  # 手术操作名称
    oprn_oprt_code: Str30 | None = None  # 手术操作代码
    anst_way: Str6 | None = None  # 麻醉方式
    oper_dr_code: Str20 | None = None  # 术者医师代码
    anst_dr_code: Str20 | None = None  # 麻醉医师代码
    oprn_oprt_begntime: DateTimeText | None = None  # 手术操作开始时间
    oprn_oprt_endtime: DateTimeText | None = None  # 手术操作结束时间
    anst_begntime: DateTimeText | None = None  # 麻醉开始时间
    anst_endtime: DateTimeText | None = None  # 麻醉结束时间


class Icuinfo4101A(msgspec.Struct, kw_only=True):
    """Node `icuinfo` of national 4101A."""

    scs_cutd_ward_type: Str6 | None = None  # 重症监护病房类型
    scs_cutd_inpool_time: DateTimeText | None = None  # 重症监护进入时间
    scs_cutd_exit_time: DateTimeText | None = None  # 重症监护退出时间
    scs_cutd_sum_dura: Str10 | None = None  # 重症监护合计时长


class Bldinfo4101A(msgspec.Struct, kw_only=True):
    """Node `bldinfo` of national 4101A."""

    bld_cat: Str3 | None = None  # 输血品种
    bld_amt: Decimal | None = None  # 输血量
    bld_unt: Str3 | None = None  # 输血计量单位


class Opspdiseinfo4101A(msgspec.Struct, kw_only=True):
    """Node `opspdiseinfo` of national 4101A."""

    oprn_oprt_name: Str500 | None = None  # 手术操作名称
    oprn_oprt_code: Str30 | None = None  # 手术操作代码


class Setlinfo4101(msgspec.Struct, kw_only=True):
    """Node `setlinfo` of national 4101."""

    mdtrt_id: Str30 | None = None  # 就诊ID
    setl_id: Str30 | None = None  # 结算ID
    hi_no: Str30 | None = None  # 医保编号
    medcasno: Str40 | None = None  # 病案号
    dcla_time: DateTimeText | None = None  # 申报时间
    ntly: Str6 | None = None  # 国籍
    prfs: Str6 | None = None  # 职业
    curr_addr: Str200 | None = None  # 现住址
    emp_name: Str200 | None = None  # 单位名称
    emp_addr: Str200 | None = None  # 单位地址
    emp_tel: Str50 | None = None  # 单位电话
    poscode: Str6 | None = None  # 邮编
    coner_name: Str50 | None = None  # 联系人姓名
    patn_rlts: Str6 | None = None  # 与患者关系
    coner_addr: Str200 | None = None  # 联系人地址
    coner_tel: Str50 | None = None  # 联系人电话
    nwb_adm_type: Str50 | None = None  # 新生儿入院类型
    nwb_bir_wt: Decimal | None = None  # 新生儿出生体重
    nwb_adm_wt: Decimal | None = None  # 新生儿入院体重
    opsp_diag_caty: Str50 | None = None  # 门诊慢特病诊断科别
    opsp_mdtrt_date: DateText | None = None  # 门诊慢特病就诊日期
    adm_way: Str30 | None = None  # 入院途径
    trt_type: Str3 | None = None  # 治疗类别
    adm_time: DateTimeText | None = None  # 入院时间
    refldept_dept: Str50 | None = None  # 转科科别
    dscg_time: DateTimeText | None = None  # 出院时间
    dscg_caty: Str6 | None = None  # 出院科别
    otp_wm_dise: Str200 | None = None  # 门(急)诊诊断(西医诊断)
    wm_dise_code: Str20 | None = None  # 西医疾病代码
    otp_tcm_dise: Str200 | None = None  # 门(急)诊诊断(中医诊断)
    tcm_dise_code: Str20 | None = None  # 中医疾病代码
    vent_used_dura: Str10 | None = None  # 呼吸机使用时长
    pwcry_bfadm_coma_dura: Str10 | None = None  # 颅脑损伤患者入院前昏迷时长
    pwcry_afadm_coma_dura: Str10 | None = None  # 颅脑损伤患者入院后昏迷时长
    spga_nurscare_days: int | None = None  # 特级护理天数
    lv1_nurscare_days: int | None = None  # 一级护理天数
    scd_nurscare_days: int | None = None  # 二级护理天数
    lv3_nurscare_days: int | None = None  # 三级护理天数
    dscg_way: Str3 | None = None  # 离院方式
    acp_medins_name: Str100 | None = None  # 拟接收机构名称
    acp_optins_code: Str30 | None = None  # 拟接收机构代码
    bill_code: Str50 | None = None  # 票据代码
    bill_no: Str30 | None = None  # 票据号码
    biz_sn: Str50 | None = None  # 业务流水号
    days_rinp_flag_31: Str3 | None = None  # 出院31天内再住院计划标志
    days_rinp_pup_31: Str200 | None = None  # 出院31天内再住院计划目的
    chfpdr_code: Str30 | None = None  # 主诊医师代码
    setl_begn_date: DateText | None = None  # 结算开始日期
    setl_end_date: DateText | None = None  # 结算结束日期
    medins_fill_dept: Str100 | None = None  # 医疗机构填报部门
    medins_fill_psn: Str50 | None = None  # 医疗机构填报人
    hi_paymtd: Str3 | None = None  # 医保支付方式
    fixmedins_name: Str200 | None = None  # 定点医药机构名称
    fixmedins_code: Str12 | None = None  # 定点医药机构编号
    hi_setl_lv: Str3 | None = None  # 医保结算等级
    psn_name: Str50 | None = None  # 人员姓名
    gend: Str6 | None = None  # 性别
    brdy: DateText | None = None  # 出生日期
    age: Decimal | None = None  # 年龄
    nwb_age: int | None = None  # (年龄不足1周岁)年龄
    naty: Str3 | None = None  # 民族
    patn_cert_type: Str6 | None = None  # 患者证件类别
    certno: Str50 | None = None  # 证件号码
    hi_type: Str3 | None = None  # 医保类型
    insuplc: Str6 | None = None  # 参保地
    sp_psn_type: Str6 | None = None  # 特殊人员类型
    ipt_med_type: Str3 | None = None  # 住院医疗类型
    adm_caty: Str6 | None = None  # 入院科别
    act_ipt_days: int | None = None  # 实际住院天数
    diag_code_cnt: int | None = None  # 诊断代码计数
    oprn_oprt_code_cnt: int | None = None  # 手术操作代码计数
    bld_cat: Str3 | None = None  # 输血品种
    bld_amt: Decimal | None = None  # 输血量
    bld_unt: Str3 | None = None  # 输血计量单位
    chfpdr_name: Str50 | None = None  # 主诊医师姓名
    psn_selfpay: Decimal | None = None  # 个人自付
    psn_ownpay: Decimal | None = None  # 个人自费
    acct_pay: Decimal | None = None  # 个人账户支出
    psn_cashpay: Decimal | None = None  # 个人现金支付
    hsorg: Str100 | None = None  # 医保机构
    hsorg_opter: Str50 | None = None  # 医保机构经办人


class Diseinfo4101(msgspec.Struct, kw_only=True):
    """Node `diseinfo` of national 4101."""

    diag_type: Str3 | None = None  # 诊断类别
    diag_code: Str20 | None = None  # 诊断代码
    diag_name: Str100 | None = None  # 诊断名称
    adm_cond_type: Str3 | None = None  # 入院病情类型
    maindiag_flag: Str3 | None = None  # 主诊断标志


class Oprninfo4101(msgspec.Struct, kw_only=True):
    """Node `oprninfo` of national 4101."""

    oprn_oprt_type: Str3 | None = None  # 手术操作类别
    oprn_oprt_name: Str500 | None = None  # 手术操作名称
    oprn_oprt_code: Str30 | None = None  # 手术操作代码
    anst_way: Str6 | None = None  # 麻醉方式
    oper_dr_code: Str20 | None = None  # 术者医师代码
    anst_dr_code: Str20 | None = None  # 麻醉医师代码
    oprn_oprt_date: DateText | None = None  # 手术操作日期
    oper_dr_name: Str50 | None = None  # 术者医师姓名
    anst_dr_name: Str50 | None = None  # 麻醉医师姓名


class Icuinfo4101(msgspec.Struct, kw_only=True):
    """Node `icuinfo` of national 4101."""

    scs_cutd_ward_type: Str6 | None = None  # 重症监护病房类型
    scs_cutd_inpool_time: DateTimeText | None = None  # 重症监护进入时间
    scs_cutd_exit_time: DateTimeText | None = None  # 重症监护退出时间
    scs_cutd_sum_dura: Str10 | None = None  # 重症监护合计时长


class Opspdiseinfo4101(msgspec.Struct, kw_only=True):
    """Node `opspdiseinfo` of national 4101."""

    oprn_oprt_name: Str500 | None = None  # 手术操作名称
    oprn_oprt_code: Str30 | None = None  # 手术操作代码
    diag_name: Str100 | None = None  # 诊断名称
    diag_code: Str20 | None = None  # 诊断代码
    maindiag_flag: Str3 | None = None  # 主诊断标志


class Payinfo4101(msgspec.Struct, kw_only=True):
    """Node `payinfo` of national 4101."""

    fund_pay_type: Str6 | None = None  # 基金支付类型
    fund_payamt: Decimal | None = None  # 基金支付金额


class Iteminfo4101(msgspec.Struct, kw_only=True):
    """Node `iteminfo` of national 4101."""

    med_chrgitm: Str6 | None = None  # 医疗收费项目
    amt: Decimal | None = None  # 金额
    claa_sumfee: Decimal | None = None  # 甲类费用合计
    clab_amt: Decimal | None = None  # 乙类金额
    fulamt_ownpay_amt: Decimal | None = None  # 全自费金额
    oth_amt: Decimal | None = None  # 其他金额


class Input4101A(msgspec.Struct, kw_only=True):
    """`input` of national 4101A."""

    setlinfo: Setlinfo4101A
    diseinfo: list[Diseinfo4101A] = msgspec.field(default_factory=list)
    oprninfo: list[Oprninfo4101A] = msgspec.field(default_factory=list)
    icuinfo: list[Icuinfo4101A] = msgspec.field(default_factory=list)
    bldinfo: list[Bldinfo4101A] = msgspec.field(default_factory=list)
    opspdiseinfo: list[Opspdiseinfo4101A] = msgspec.field(default_factory=list)


class Input4101(msgspec.Struct, kw_only=True):
    """`input` of national 4101."""

    setlinfo: Setlinfo4101
    payinfo: list[Payinfo4101] = msgspec.field(default_factory=list)
    opspdiseinfo: list[Opspdiseinfo4101] = msgspec.field(default_factory=list)
    diseinfo: list[Diseinfo4101] = msgspec.field(default_factory=list)
    iteminfo: list[Iteminfo4101] = msgspec.field(default_factory=list)
    oprninfo: list[Oprninfo4101] = msgspec.field(default_factory=list)
    icuinfo: list[Icuinfo4101] = msgspec.field(default_factory=list)


class Response(msgspec.Struct, kw_only=True):
    """National response envelope (`infcode` 0 = success, -1 = failure)."""

    infcode: int
    inf_refmsgid: Str30 | None = None
    refmsg_time: Str17 | None = None
    respond_time: Str17 | None = None
    err_msg: Str200 | None = None
    output: dict[str, Any] | None = None
