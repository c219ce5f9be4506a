-- owner: sitetwin.data
-- A site's street address as its construction permit (施工许可证) writes it, e.g.
-- 湖北省武汉市江岸区二七路88号: shown with the site's name on the overview, the portfolio and the
-- evaluation report. Free text typed by people (data.text.clean_text), at most 200 characters.

ALTER TABLE sites ADD COLUMN address VARCHAR;
