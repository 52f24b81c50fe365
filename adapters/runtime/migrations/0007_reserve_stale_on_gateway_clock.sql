-- A pending reservation is stale when its request is older than `stale` on the gateway's own
-- clock (`received`, the new request's received_at), not the database's: both moments then
-- come from one clock (gateway.clock), whatever the database server's time or the date a
-- test pins the gateway to. Otherwise as 0005.
CREATE OR REPLACE FUNCTION dipgw_reserve(
    codes text[], setls text[], hashes bytea[], areas text[], insured text[],
    new_ids uuid[], received timestamptz, stale interval,
    nonce_code text DEFAULT NULL, nonce text DEFAULT NULL
) RETURNS TABLE (
    i integer, receipt_id uuid, revision integer, status text, received_at timestamptz,
    outcome text
) LANGUAGE plpgsql AS $$
DECLARE
    idx integer;
    found_row record;
    next_revision integer;
BEGIN
    IF nonce IS NOT NULL THEN
        INSERT INTO request_nonces (fixmedins_code, nonce) VALUES (nonce_code, nonce)
        ON CONFLICT DO NOTHING;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'dipgw: nonce reused';
        END IF;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext(k))
    FROM (SELECT DISTINCT codes[j] || ':' || setls[j] AS k
          FROM generate_subscripts(codes, 1) AS j ORDER BY 1) AS keys;
    FOR idx IN 1 .. coalesce(array_length(codes, 1), 0) LOOP
        SELECT r.receipt_id, r.revision, r.status, r.received_at,
               received - r.received_at > stale AS is_stale
        INTO found_row
        FROM receipts r
        WHERE r.fixmedins_code = codes[idx] AND r.setl_id = setls[idx]
          AND r.content_sha256 = hashes[idx];
        IF FOUND THEN
            i := idx; receipt_id := found_row.receipt_id; revision := found_row.revision;
            status := found_row.status; received_at := found_row.received_at;
            outcome := CASE WHEN found_row.status <> 'pending' THEN 'duplicate'
                            WHEN found_row.is_stale THEN 'takeover' ELSE 'wait' END;
            RETURN NEXT;
            CONTINUE;
        END IF;
        SELECT coalesce(max(r.revision), 0) + 1 INTO next_revision
        FROM receipts r WHERE r.fixmedins_code = codes[idx] AND r.setl_id = setls[idx];
        INSERT INTO receipts AS r (receipt_id, fixmedins_code, setl_id, revision, content_sha256,
                                   status, mdtrtarea_admvs, insuplc_admdvs, received_at)
        VALUES (new_ids[idx], codes[idx], setls[idx], next_revision, hashes[idx], 'pending',
                areas[idx], insured[idx], received)
        RETURNING r.receipt_id, r.revision, r.status, r.received_at
        INTO receipt_id, revision, status, received_at;
        i := idx; outcome := 'new';
        RETURN NEXT;
    END LOOP;
END;
$$;
