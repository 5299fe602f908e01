-- PostGraphile's side of `make bench-peers` (bench/peers.py): the demo world's persons and enterprises in one
-- database (PostGraphile reads one), and the closest equivalent in PostgreSQL of the demo's grants
-- (demo/build.py DEMO_GRANTS; bench/peers.py checks that they still say what is written here):
--
--   market, market.licence-review on police.person: idNumber name gender birthDate countyCode address, every row
--   hrss, hrss.insurance-enrolment on police.person: idNumber (masked id_number: first 6 and last 4 kept) name
--     countyCode address, rows of county 371311 only; gender and countyCode are unconditional items (anyone reads)
--   market on market.enterprise: every item (its own resource)
--
-- as a role per consumer department, column grants (an item not granted is a column the role cannot read),
-- row-level security for the county scope, and a view for the mask. The mask cannot be a column grant (whoever
-- may read id_number reads it whole), so hrss reads persons only through the view `person_hrss`, which runs with
-- its owner's rights: the owner, {hrss_view}, may read exactly hrss's columns, and the row-level policy for it
-- keeps county 371311. hrss itself has no right on the table.
--
-- bench/peers.py runs this in a new database, then copies the rows in and analyses them.
-- {placeholders} are role names, unique per run (roles belong to the whole PostgreSQL server; bench/peers.py drops
-- them at the end), and hrss's pseudonym key (below).

CREATE SCHEMA peers;

CREATE TABLE peers.person (
    id_number varchar(18) PRIMARY KEY,
    name varchar(50) NOT NULL,
    gender varchar(2) NOT NULL,
    birth_date date NOT NULL,
    ethnicity varchar(20) NOT NULL,
    county_code varchar(6) NOT NULL,
    address varchar(200) NOT NULL,
    household_id varchar(20) NOT NULL,
    phone varchar(11)
);
CREATE INDEX person_name ON peers.person (name);
CREATE INDEX person_county_code ON peers.person (county_code);
CREATE INDEX person_household_id ON peers.person (household_id);

CREATE TABLE peers.enterprise (
    credit_code varchar(18) PRIMARY KEY,
    name varchar(100) NOT NULL,
    -- every legal representative is a person the police know (demo/world.py): the link is a foreign key here
    legal_rep_id_number varchar(18) NOT NULL REFERENCES peers.person (id_number),
    legal_rep_name varchar(50) NOT NULL,
    county_code varchar(6) NOT NULL,
    address varchar(200) NOT NULL,
    registered_capital numeric(14, 2) NOT NULL,
    established_date date NOT NULL,
    business_scope varchar(500) NOT NULL,
    status varchar(10) NOT NULL
);
CREATE INDEX enterprise_name ON peers.enterprise (name);
CREATE INDEX enterprise_legal_rep_id_number ON peers.enterprise (legal_rep_id_number);
CREATE INDEX enterprise_county_code ON peers.enterprise (county_code);

-- The roles: one per consumer department, the view's owner, and the role PostGraphile connects as (it may become
-- a consumer's role, and reads nothing as itself). {anonymous} is what a request without a known key becomes.
CREATE ROLE {market} NOLOGIN;
CREATE ROLE {hrss} NOLOGIN;
CREATE ROLE {hrss_view} NOLOGIN;
CREATE ROLE {anonymous} NOLOGIN;
CREATE ROLE {authenticator} LOGIN NOINHERIT;
GRANT {market}, {hrss}, {anonymous} TO {authenticator};

GRANT USAGE ON SCHEMA peers TO {market}, {hrss}, {hrss_view}, {anonymous};

-- market: its grant's items of persons, every row; its own enterprises whole.
GRANT SELECT (id_number, name, gender, birth_date, county_code, address) ON peers.person TO {market};
GRANT SELECT ON peers.enterprise TO {market};

-- Row-level security on persons: market every row, hrss (through its view's owner) county 371311 only.
ALTER TABLE peers.person ENABLE ROW LEVEL SECURITY;
CREATE POLICY market_every_row ON peers.person FOR SELECT TO {market} USING (true);
CREATE POLICY hrss_county_scope ON peers.person FOR SELECT TO {hrss_view} USING (county_code = '371311');

-- hrss: the mask, as govshare writes it in a PostgreSQL source's SQL (connectors/sql.py, keep:6,4).
GRANT SELECT (id_number, name, gender, county_code, address) ON peers.person TO {hrss_view};
CREATE VIEW peers.person_hrss WITH (security_barrier) AS
SELECT
    (CASE WHEN char_length(id_number) <= 10 THEN repeat('*', char_length(id_number))
     ELSE substr(id_number, 1, 6) || repeat('*', char_length(id_number) - 10)
          || substr(id_number, char_length(id_number) - 4 + 1) END) AS id_number,
    name,
    gender,
    county_code,
    address
FROM peers.person
-- In govshare's order: where the caller does not see the key in clear, rows come in the order of the key's keyed
-- pseudonym for the caller's department (HMAC-SHA256 under the department's key, first 24 hex digits, computed
-- with SHA-256 from the key's padded inner and outer keys, as connectors/sql.py does), so that the order gives no
-- hidden digit away. bench/peers.py writes hrss's padded keys in.
ORDER BY substr(encode(sha256(decode('{hrss_order_outer}', 'hex') || sha256(decode('{hrss_order_inner}', 'hex')
    || convert_to(person.id_number, 'UTF8'))), 'hex'), 1, 24);
ALTER VIEW peers.person_hrss OWNER TO {hrss_view};
GRANT SELECT ON peers.person_hrss TO {hrss};
COMMENT ON VIEW peers.person_hrss IS E'@name hrss_person\nPersons as 人社局 may read them: county 371311, ID numbers masked.';
