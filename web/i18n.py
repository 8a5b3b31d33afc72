"""The interface text in Chinese and English, and the choice between them.

All words a person reads on the page live here, in two tables with the same
keys (a test checks that), so adding a string in one language and forgetting
the other is caught.  The language comes from ``?lang=`` when given (the
switch on the page sets it), else from the browser's ``Accept-Language``.
Document text and the search API's technical error messages are not
translated.
"""

from __future__ import annotations

from collections.abc import Mapping

from werkzeug.datastructures import LanguageAccept

LANGUAGES = ("zh", "en")
DEFAULT_LANGUAGE = "zh"

#: ``<html lang>`` of each language.
HTML_LANG = {"zh": "zh-CN", "en": "en"}

#: The other language's name, written in that language, for the switch.
SWITCH_LABEL = {"zh": "English", "en": "中文"}

STRINGS: dict[str, dict[str, str]] = {
    "zh": {
        "site_name": "搜义",
        "tagline": "中英文语义与全文段落检索",
        "search_label": "搜索",
        "placeholder": "输入问题或关键词，中英文皆可",
        "search_button": "搜索",
        "mode_legend": "检索方式",
        "mode_hybrid": "混合",
        "mode_dense": "语义",
        "mode_lexical": "关键词",
        "mode_hybrid_help": "语义与关键词结合",
        "mode_dense_help": "按意思匹配，可跨语言",
        "mode_lexical_help": "按词语匹配",
        "results_heading": "搜索结果",
        "result_range": "第 {first}–{last} 条结果",
        "took": "用时 {ms} 毫秒",
        "also_searched": "同时搜索了：",
        "paragraph": "第 {n} 段",
        "score": "得分",
        "rank_dense": "语义第 {n}",
        "rank_lexical": "关键词第 {n}",
        "no_results_title": "没有找到相关段落",
        "no_results_hint": "换个说法或更少的词试试，或切换到“语义”方式。",
        "page_end_title": "没有更多结果了",
        "page_end_hint": "这一页之前的结果已是全部。",
        "empty_query_title": "请输入要搜索的内容",
        "empty_query_hint": "可以输入一个问题（如“阿里巴巴在哪里上市”）或几个关键词。",
        "home_intro": "用中文或英文提问，按意思或关键词查找文档中的段落。",
        "home_keys": "按 / 键可随时回到搜索框。",
        "index_stats": "文档 {documents} 篇 · 段落 {passages} 个 · 模型 {model}",
        "pagination": "翻页",
        "previous": "上一页",
        "next": "下一页",
        "page_n": "第 {n} 页",
        "language": "语言",
        "error_400": "请求有误",
        "error_404": "页面不存在",
        "error_405": "不支持该请求方法",
        "error_409": "模型与索引不匹配",
        "error_413": "请求过大",
        "error_500": "服务器内部错误",
        "error_503": "索引不可用",
        "error_503_hint": "索引尚未建立或无法读取。用 souyi index 命令建好索引后刷新本页即可，无需重启服务。",
        "error_other": "出错了",
        "back_home": "返回首页",
        "api_link": "JSON 接口",
        "syntax_title": "搜索语法",
        "syntax_phrase": "\"软件园\" 或 “软件园”：必须包含这个短语（繁简、全半角、大小写均视为相同）",
        "syntax_exclude": "-电子商务、-\"电子 商务\"：排除包含该词或短语的段落",
        "syntax_field": "doc:文件名、title:\"标题\"、year:2009：按文档名、标题或元数据字段筛选，同一字段写多次表示任一",
        "syntax_range": "year:2008..2010、year>=2009、date<2010-07-01：按数字或日期（YYYY-MM-DD）范围筛选",
        "constraints_label": "生效的条件",
        "remove_constraint": "去掉条件 {label}",
        "facets_heading": "结果分布",
        "result_total": "共 {total} 条",
        "similar_link": "相似段落",
        "similar_heading": "与段落 {n} 意思相近的段落",
        "similar_same_too": "也列出同一文档中的段落",
        "similar_others_only": "只列出其他文档中的段落",
        "not_in_index": "索引中没有这篇文档或这个段落",
        "doc_back": "返回搜索结果",
        "doc_name": "文档",
        "doc_indexed_at": "索引时间",
        "doc_rebuilt": "此索引未保存原文，正文由各段落拼接而成，空行与标记可能缺失。",
        "doc_contents": "目录",
        "doc_matches_label": "匹配项",
        "doc_matches": "共 {n} 处匹配",
        "doc_first_match": "第一处",
        "doc_prev_match": "上一处",
        "doc_next_match": "下一处",
        "doc_keys": "按 n / p 键跳到下一处 / 上一处；点击匹配词跳到下一处。",
        "doc_capped": "这一部分匹配过多，只标出了前面的一部分。",
        "doc_parts": "文档分部",
        "doc_outline_more": "另有 {n} 个标题未列出。",
        "doc_part": "第 {n} / {total} 部分",
    },
    "en": {
        "site_name": "souyi",
        "tagline": "Semantic and full-text passage search, Chinese and English",
        "search_label": "Search",
        "placeholder": "Ask a question or type keywords",
        "search_button": "Search",
        "mode_legend": "Search mode",
        "mode_hybrid": "Hybrid",
        "mode_dense": "Semantic",
        "mode_lexical": "Keyword",
        "mode_hybrid_help": "meaning and keywords combined",
        "mode_dense_help": "by meaning, across languages",
        "mode_lexical_help": "by words",
        "results_heading": "Results",
        "result_range": "Results {first}–{last}",
        "took": "{ms} ms",
        "also_searched": "Also searched:",
        "paragraph": "¶ {n}",
        "score": "score",
        "rank_dense": "semantic #{n}",
        "rank_lexical": "keyword #{n}",
        "no_results_title": "No matching passages",
        "no_results_hint": "Try other or fewer words, or the Semantic mode.",
        "page_end_title": "No more results",
        "page_end_hint": "The earlier pages hold all the results.",
        "empty_query_title": "Type something to search for",
        "empty_query_hint": "A question (such as “Where did Alibaba go public?”) or a few keywords.",
        "home_intro": "Ask in Chinese or English; find passages by meaning or by keyword.",
        "home_keys": "Press / at any time to jump to the search box.",
        "index_stats": "Documents: {documents} · Passages: {passages} · Model: {model}",
        "pagination": "Pages",
        "previous": "Previous",
        "next": "Next",
        "page_n": "Page {n}",
        "language": "Language",
        "error_400": "Bad request",
        "error_404": "Page not found",
        "error_405": "Method not allowed",
        "error_409": "The model does not match the index",
        "error_413": "Request too large",
        "error_500": "Internal server error",
        "error_503": "The index is unavailable",
        "error_503_hint": "The index is missing or unreadable. Build it with the souyi index command, "
        "then reload this page; the server needs no restart.",
        "error_other": "Something went wrong",
        "back_home": "Back to the search page",
        "api_link": "JSON API",
        "syntax_title": "Search syntax",
        "syntax_phrase": "\"software park\" or “软件园”: must contain this exact phrase (traditional/simplified, "
        "width and case are folded)",
        "syntax_exclude": "-word, -\"some phrase\": leave out passages that contain it",
        "syntax_field": "doc:NAME, title:\"Title\", year:2009: only documents with this name, title or metadata "
        "value; a repeated field means any of its values",
        "syntax_range": "year:2008..2010, year>=2009, date<2010-07-01: ranges of numbers or dates (YYYY-MM-DD)",
        "constraints_label": "Constraints in force",
        "remove_constraint": "Remove the constraint {label}",
        "facets_heading": "Results by field",
        "result_total": "{total} in all",
        "similar_link": "Similar passages",
        "similar_heading": "Passages similar in meaning to passage {n}",
        "similar_same_too": "Include passages of the same document",
        "similar_others_only": "Only passages of other documents",
        "not_in_index": "No such document or passage in the index",
        "doc_back": "Back to the results",
        "doc_name": "Document",
        "doc_indexed_at": "Indexed",
        "doc_rebuilt": "This index keeps no original text: the text is rebuilt from its passages, "
        "so blank lines and markup may be missing.",
        "doc_contents": "Contents",
        "doc_matches_label": "Matches",
        "doc_matches": "{n} matches",
        "doc_first_match": "First",
        "doc_prev_match": "Previous",
        "doc_next_match": "Next",
        "doc_keys": "Press n / p for the next / previous match; click a match to go to the next.",
        "doc_capped": "This part has too many matches; only the first ones are marked.",
        "doc_parts": "Parts of the document",
        "doc_outline_more": "{n} more headings are not listed.",
        "doc_part": "Part {n} of {total}",
    },
}


def pick_language(requested: str | None, accept: LanguageAccept) -> str:
    """``requested`` when it is a known language, else the browser's best match, else Chinese."""
    if requested in LANGUAGES:
        return requested
    return accept.best_match(LANGUAGES, default=DEFAULT_LANGUAGE)


def strings(lang: str) -> Mapping[str, str]:
    """The interface text of ``lang``."""
    return STRINGS[lang]
