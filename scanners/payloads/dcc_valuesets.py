"""The closed EU DCC value sets that the schema's ``valueset-uri`` keyword names.

Closed and unchanged since the eHN value sets 1.0 (2021-04-16): disease targeted, test type, test
result, and the ISO 3166-1 alpha-2 country codes. The open ones (vaccine products,
manufacturers, RAT devices) grow every few weeks and are business rules, not structure.
"""

from __future__ import annotations

DISEASE_AGENT_TARGETED = frozenset({"840539006"})
TEST_TYPE = frozenset({"LP6464-4", "LP217198-3"})
TEST_RESULT = frozenset({"260415000", "260373001"})
# ISO 3166-1 alpha-2 (the schema's country-2-codes value set).
_ISO_3166_ALPHA_2 = """
AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS
BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE
EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM
HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC
LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA
NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW
SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO
TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW
"""
COUNTRY_CODES = frozenset(_ISO_3166_ALPHA_2.split())

# valueset-uri -> (members, what a member is). 1.0.x schemas name the test-result set
# "test-results.json" (the file is test-result.json): the same set.
CLOSED_VALUE_SETS = {
    "valuesets/disease-agent-targeted.json": (DISEASE_AGENT_TARGETED, "a disease in the value set"),
    "valuesets/test-type.json": (TEST_TYPE, "a test type in the value set"),
    "valuesets/test-result.json": (TEST_RESULT, "a test result in the value set"),
    "valuesets/test-results.json": (TEST_RESULT, "a test result in the value set"),
    "valuesets/country-2-codes.json": (COUNTRY_CODES, "an ISO 3166-1 alpha-2 country code"),
}
