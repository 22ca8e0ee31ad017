from text_recognizer.errors import ConfigError, ImageError, with_name


def test_with_name_leads_with_the_name_once_and_keeps_the_kind_of_error() -> None:
    error = ImageError("the image is blank")
    named = with_name(error, "scan.tif page 3")
    assert type(named) is ImageError and str(named) == "scan.tif page 3: the image is blank"
    assert with_name(named, "scan.tif page 3") is named  # named already: as it is
    assert with_name(error, "") is error and with_name(error, None) is error
    config = with_name(ConfigError("no line model loaded"), "a.png")
    assert type(config) is ConfigError and str(config) == "a.png: no line model loaded"
