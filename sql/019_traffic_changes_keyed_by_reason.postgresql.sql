-- A traffic step's task shifts traffic and watches its window; when the window's trigger decides a breach it takes
-- all traffic off green for the same task try. Two changes of one try, told apart by their reason: the key gains it
-- (repeating a try's change still writes nothing new).
ALTER TABLE traffic_changes DROP CONSTRAINT traffic_changes_pkey;
ALTER TABLE traffic_changes ADD PRIMARY KEY (release_id, task_id, try_number, reason);
