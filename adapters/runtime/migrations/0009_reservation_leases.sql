-- Reservations hold a lease instead of being deleted when a send fails.
--
-- A Kafka write whose outcome is uncertain (a timeout, or a failure reported by a broker
-- that was only stalled) may still have appended the record. Deleting the reservation then
-- let the retry reserve a second receipt for the same content: two records downstream,
-- two "received" in quality. Now the reservation stays, its lease is ended at once, and the
-- retry takes it over: the same receipt id and revision are sent again, which the sink, the
-- workers and quality all treat as one.
--
-- A live request's lease is `stale` long on the database's clock (a duration, so any clock
-- serves; the database's is the one every gateway process shares). A takeover renews the
-- lease in the same locked statement, so two retries never both take over one reservation.
-- Rows reserved before this migration have no lease and keep 0007's rule.
ALTER TABLE receipts ADD COLUMN lease_until timestamptz;

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
               CASE WHEN r.lease_until IS NULL THEN received - r.received_at > stale
                    ELSE r.lease_until <= clock_timestamp() END AS is_stale
        INTO found_row
        FROM receipts r
        WHERE r.fixmedins_code = codes[idx] AND r.setl_id = setls[idx]
          AND r.content_sha256 = hashes[idx];
        IF FOUND THEN
            i := idx; receipt_id := found_row.receipt_id; revision := found_row.revision;
            status := found_row.status; received_at := found_row.received_at;
            outcome := CASE WHEN found_row.status <> 'pending' THEN 'duplicate'
                            WHEN found_row.is_stale THEN 'takeover' ELSE 'wait' END;
            IF outcome = 'takeover' THEN
                UPDATE receipts r SET lease_until = clock_timestamp() + stale
                WHERE r.receipt_id = found_row.receipt_id;
            END IF;
            RETURN NEXT;
            CONTINUE;
        END IF;
        SELECT coalesce(max(r.revision), 0) + 1 INTO next_revision
        FROM receipts r WHERE r.fixmedins_code = codes[idx] AND r.setl_id = setls[idx];
        INSERT INTO receipts AS r (receipt_id, fixmedins_code, setl_id, revision, content_sha256,
                                   status, mdtrtarea_admvs, insuplc_admdvs, received_at,
                                   lease_until)
        VALUES (new_ids[idx], codes[idx], setls[idx], next_revision, hashes[idx], 'pending',
                areas[idx], insured[idx], received, clock_timestamp() + stale)
        RETURNING r.receipt_id, r.revision, r.status, r.received_at
        INTO receipt_id, revision, status, received_at;
        i := idx; outcome := 'new';
        RETURN NEXT;
    END LOOP;
END;
$$;
