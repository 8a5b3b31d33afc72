"""Passage splitting: headings, long paragraphs, offsets, mixed text."""

from indexer.split import Chunk, split_document


def _check_offsets(text: str, chunks: list[Chunk]) -> None:
    for chunk in chunks:
        assert text[chunk.start : chunk.end] == chunk.text


def test_heading_becomes_context_not_passage():
    text = "产业发展概况\n2007年，全省实现销售收入4300亿元，同比增长20%。\n\n主要措施\n一、加快产业结构调整。"
    chunks = split_document(text)
    _check_offsets(text, chunks)
    assert [c.text for c in chunks] == ["2007年，全省实现销售收入4300亿元，同比增长20%。", "一、加快产业结构调整。"]
    assert [c.heading for c in chunks] == ["产业发展概况", "主要措施"]
    assert [c.paragraph for c in chunks] == [2, 4]


def test_numbers_and_decimals_do_not_end_sentences():
    text = "利税277亿元，同比增长13.9%；工业增加值834亿元，同比增长28.7%。"
    chunks = split_document(text)
    assert len(chunks) == 1 and chunks[0].text == text


def test_long_paragraph_splits_at_sentence_ends_only():
    sentence = "浙江省大力发展软件与信息服务业，推动产业结构优化升级。"
    text = sentence * 30
    chunks = split_document(text, max_size=100)
    _check_offsets(text, chunks)
    assert len(chunks) > 1
    assert all(len(c.text) <= 100 for c in chunks)
    assert all(c.text.endswith("。") for c in chunks)
    assert "".join(c.text for c in chunks) == text
    assert {c.paragraph for c in chunks} == {1}


def test_overlong_sentence_is_cut_at_clauses():
    text = "，".join(["发展软件与信息服务业"] * 40) + "。"
    chunks = split_document(text, max_size=60)
    _check_offsets(text, chunks)
    assert all(len(c.text) <= 60 for c in chunks)
    assert "".join(c.text for c in chunks) == text


def test_mixed_chinese_english_and_markdown_heading():
    text = "# Annual report\n\nHangzhou is a hub. It grew fast! 杭州软件服务外包基地发展良好。\n"
    chunks = split_document(text, max_size=20)
    _check_offsets(text, chunks)
    assert chunks[0].heading == "Annual report"
    assert chunks[0].text.startswith("Hangzhou is a hub.")
    assert chunks[-1].text == "杭州软件服务外包基地发展良好。"


def test_english_counts_about_a_quarter_per_character():
    """A passage budget means about as much meaning in English as in Chinese."""
    english = " ".join(f"Sentence number {i} talks about the port of Ningbo." for i in range(40))
    chinese = "宁波舟山港货物吞吐量连续多年位居全球第一。" * 40
    english_chunks, chinese_chunks = split_document(english, 100), split_document(chinese, 100)
    assert max(len(c.text) for c in english_chunks) > 3 * max(len(c.text) for c in chinese_chunks)
    assert all(len(c.text) <= 100 for c in chinese_chunks)
    assert all(len(c.text) <= 400 for c in english_chunks)


def test_balanced_cuts_leave_no_stub():
    text = "浙江省大力发展软件与信息服务业，推动产业结构优化升级。" * 5 + "完成。"
    sizes = [len(c.text) for c in split_document(text, max_size=100)]
    assert min(sizes) > 30, sizes


def test_trailing_or_consecutive_headings_are_kept_as_text():
    text = "标题一\n标题二\n正文内容在这里。\n结尾标题"
    chunks = split_document(text)
    texts = [c.text for c in chunks]
    assert "标题一" in texts and "结尾标题" in texts
    assert chunks[texts.index("正文内容在这里。")].heading == "标题二"


def test_empty_and_blank_documents():
    assert split_document("") == []
    assert split_document("\n \n\t\n") == []


def test_a_very_short_paragraph_joins_its_neighbour_in_the_same_section():
    text = "概况\n2007年，工作取得了新的进展。\n一、信息技术创新力度加大。搭建创新对接与合作平台，集聚和激活创新要素。"
    chunks = split_document(text)
    _check_offsets(text, chunks)
    assert len(chunks) == 1
    assert chunks[0].text.startswith("2007年") and chunks[0].text.endswith("创新要素。")
    assert chunks[0].paragraph == 2 and chunks[0].heading == "概况"


def test_sentence_without_any_punctuation_is_cut_by_size():
    text = "软" * 500
    chunks = split_document(text, max_size=150)
    _check_offsets(text, chunks)
    assert "".join(c.text for c in chunks) == text
    assert all(len(c.text) <= 150 for c in chunks)
