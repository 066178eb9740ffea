-- A staged file plan is read by its folder only (pending_file_folder_idx): the insert step,
-- the rejections, the checks and the next plan's scope all go by (bucket, folder). The
-- primary key on (bucket, key) was one more index to fill for each of a first import's 1M
-- staged rows (COPY of a 62.5k-row folder: 266-420 ms with it, 197-299 ms without, four
-- alternated rounds). A key is planned once by construction (one candidate a listed key), and
-- the catalog's own UNIQUE (bucket, key) is what keeps a file from being inserted twice.
ALTER TABLE ingest.pending_file DROP CONSTRAINT pending_file_pkey;
