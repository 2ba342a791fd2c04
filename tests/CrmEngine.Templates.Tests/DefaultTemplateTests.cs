using CrmEngine.Abstractions.Model;

namespace CrmEngine.Templates.Tests;

/// <summary>The shipped templates rendered for sample customers: accented, Chinese, sparse and hostile names.</summary>
public sealed class DefaultTemplateTests : IDisposable
{
    private const string Unsubscribe = "https://crm.example/unsubscribe?r=c1&t=abc";
    private readonly TempTemplates _folder = new(withShipped: true);
    private readonly MailTemplates _templates;

    public DefaultTemplateTests()
    {
        _templates = new MailTemplates(_folder.Directory);
    }

    public void Dispose()
    {
        _templates.Dispose();
        _folder.Dispose();
    }

    private static Dictionary<string, object?> CaseExtra() => new()
    {
        ["case"] = new Dictionary<string, object?>
        {
            ["number"] = "CS-2026-0042",
            ["subject"] = "Lieferung beschädigt <urgent>",
            ["respond_by"] = new DateTimeOffset(2026, 3, 16, 17, 0, 0, TimeSpan.Zero),
        },
    };

    private static Dictionary<string, object?> CampaignExtra() => new()
    {
        ["campaign"] = new Dictionary<string, object?>
        {
            ["name"] = "spring-2026",
            ["subject"] = "Our spring offers for you",
            ["headline"] = "Spring is here",
            ["intro"] = "Fresh ideas for your shop.\nOnly until the end of April.",
            ["offers"] = new List<object?>
            {
                new Dictionary<string, object?> { ["title"] = "Coffee grinder", ["price"] = 99.5m, ["currency"] = "EUR", ["text"] = "Now with a ceramic burr." },
                new Dictionary<string, object?> { ["title"] = "Green tea box" },
            },
            ["link"] = "https://shop.example/spring?utm=mail&x=1",
            ["link_text"] = "See all offers",
        },
    };

    [Fact]
    public void Every_default_template_exists_and_renders_for_every_sample_customer()
    {
        var names = new[] { "welcome", "order-confirmation", "case-acknowledgement", "campaign" };
        Assert.Equal(names.Order(StringComparer.Ordinal), _templates.Names().Order(StringComparer.Ordinal));
        var samples = new Func<Dictionary<string, object?>?, string?, TemplateModel>[] { Samples.Accented, Samples.Chinese, Samples.Sparse, Samples.Hostile };
        foreach (var name in names)
        {
            Assert.True(_templates.Exists(name), name);
            foreach (var sample in samples)
            {
                var extra = name == "campaign" ? CampaignExtra() : name == "case-acknowledgement" ? CaseExtra() : null;
                var mail = _templates.Render(name, sample(extra, name == "campaign" ? Unsubscribe : null));
                Assert.False(string.IsNullOrWhiteSpace(mail.Subject), name);
                Assert.DoesNotContain('\n', mail.Subject);
                Assert.StartsWith("<!DOCTYPE html>", mail.Html, StringComparison.Ordinal);
                Assert.Contains("</html>", mail.Html, StringComparison.Ordinal);
                Assert.Contains("Kind regards,", mail.Text, StringComparison.Ordinal);
                Assert.Contains("Nordlicht Handel <service@nordlicht.example>", mail.Text, StringComparison.Ordinal);
                Assert.DoesNotContain("{{", mail.Html, StringComparison.Ordinal);
                Assert.DoesNotContain("{{", mail.Text, StringComparison.Ordinal);
            }
        }
    }

    [Fact]
    public void Welcome_greets_accented_and_chinese_names_as_written()
    {
        var accented = _templates.Render("welcome", Samples.Accented());
        Assert.Equal("Welcome to Nordlicht Handel, Zoë", accented.Subject);
        Assert.Contains("<p>Dear Zoë Ångström-Lefèvre,</p>", accented.Html, StringComparison.Ordinal);
        Assert.Contains("Dear Zoë Ångström-Lefèvre,", accented.Text, StringComparison.Ordinal);
        Assert.Contains("Your personal contact with us is Renée Faßbender.", accented.Text, StringComparison.Ordinal);

        var chinese = _templates.Render("welcome", Samples.Chinese());
        Assert.Equal("Welcome to Nordlicht Handel, 王小明", chinese.Subject);
        Assert.Contains("Dear 王小明,", chinese.Html, StringComparison.Ordinal);
        Assert.Contains("Dear 王小明,", chinese.Text, StringComparison.Ordinal);
        Assert.Contains("<html lang=\"zh\">", chinese.Html, StringComparison.Ordinal);
    }

    [Fact]
    public void Missing_optional_fields_render_as_empty_not_as_errors()
    {
        var sparse = _templates.Render("welcome", Samples.Sparse());
        Assert.Equal("Welcome to Nordlicht Handel, Ana", sparse.Subject);
        Assert.Contains("Dear Ana,", sparse.Text, StringComparison.Ordinal);
        Assert.DoesNotContain("personal contact", sparse.Text, StringComparison.Ordinal);
        Assert.DoesNotContain("Unsubscribe", sparse.Text, StringComparison.Ordinal);

        var order = _templates.Render("order-confirmation", Samples.Sparse());
        Assert.Equal("Order confirmation from Nordlicht Handel", order.Subject);
        Assert.Contains("no items yet", order.Html, StringComparison.Ordinal);
        Assert.Contains("no items yet", order.Text, StringComparison.Ordinal);

        // No customer, no contact, no order, no extras at all.
        var nobody = new TemplateModel { Sender = Samples.Sender };
        var welcome = _templates.Render("welcome", nobody);
        Assert.Equal("Welcome to Nordlicht Handel", welcome.Subject);
        Assert.Contains("<p>Hello,</p>", welcome.Html, StringComparison.Ordinal);
        var acknowledgement = _templates.Render("case-acknowledgement", nobody);
        Assert.Equal("We have received your message", acknowledgement.Subject);
        Assert.Contains("as soon as possible", acknowledgement.Text, StringComparison.Ordinal);
        var campaign = _templates.Render("campaign", nobody);
        Assert.Contains("Hello,", campaign.Text, StringComparison.Ordinal);
    }

    [Fact]
    public void Customer_data_is_escaped_in_html_and_plain_in_text()
    {
        var mail = _templates.Render("order-confirmation", Samples.Hostile());
        Assert.DoesNotContain("<script>", mail.Html, StringComparison.Ordinal);
        Assert.Contains("Dear &lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;,", mail.Html, StringComparison.Ordinal);
        Assert.Contains("&lt;b&gt;bold&lt;/b&gt; &amp; &quot;quoted&quot;", mail.Html, StringComparison.Ordinal);
        Assert.Contains("Dear <script>alert('x')</script>,", mail.Text, StringComparison.Ordinal);
        Assert.Contains("<b>bold</b> & \"quoted\"", mail.Text, StringComparison.Ordinal);

        var welcome = _templates.Render("welcome", Samples.Hostile());
        Assert.Equal("Welcome to Nordlicht Handel, <script>alert('x')</script>", welcome.Subject);
    }

    [Fact]
    public void Order_confirmation_formats_money_and_dates_in_the_recipients_culture()
    {
        var german = _templates.Render("order-confirmation", Samples.Accented());
        Assert.Equal("Order confirmation SO-10042 from Nordlicht Handel", german.Subject);
        Assert.Contains("1.234,50 €", german.Html, StringComparison.Ordinal);
        Assert.Contains("2.469,00 €", german.Html, StringComparison.Ordinal);
        Assert.Contains("2.483,97 €", german.Html, StringComparison.Ordinal);
        Assert.Contains("Kaffeemühle „Crème“", german.Html, StringComparison.Ordinal);
        Assert.Contains("14. März 2026", german.Html, StringComparison.Ordinal);
        Assert.Contains("2.483,97 €", german.Text, StringComparison.Ordinal);

        var chinese = _templates.Render("order-confirmation", Samples.Chinese());
        Assert.Contains("¥288.00", chinese.Html, StringComparison.Ordinal);
        Assert.Contains("2026年3月14日", chinese.Text, StringComparison.Ordinal);
        Assert.Contains("绿茶礼盒", chinese.Text, StringComparison.Ordinal);

        var american = _templates.Render("order-confirmation", Samples.Hostile());
        Assert.Contains("$10.00", american.Html, StringComparison.Ordinal);
        Assert.Contains("March 14, 2026", american.Html, StringComparison.Ordinal);
    }

    [Fact]
    public void Case_acknowledgement_names_the_reference_and_the_promised_answer_time()
    {
        var mail = _templates.Render("case-acknowledgement", Samples.Hostile(CaseExtra()));
        Assert.Equal("We have received your message [CS-2026-0042]: Lieferung beschädigt <urgent>", mail.Subject);
        Assert.Contains("<strong>CS-2026-0042</strong>", mail.Html, StringComparison.Ordinal);
        Assert.Contains("<em>Lieferung beschädigt &lt;urgent&gt;</em>", mail.Html, StringComparison.Ordinal);
        Assert.Contains("Your reference is CS-2026-0042.", mail.Text, StringComparison.Ordinal);
        Assert.Contains("Monday, March 16, 2026", mail.Text, StringComparison.Ordinal);
    }

    [Fact]
    public void Campaign_uses_the_layout_with_header_footer_and_the_unsubscribe_link()
    {
        var mail = _templates.Render("campaign", Samples.Accented(CampaignExtra(), Unsubscribe));
        Assert.Equal("Our spring offers for you", mail.Subject);
        Assert.Contains("<title>Spring is here</title>", mail.Html, StringComparison.Ordinal);
        Assert.Contains("<a href=\"https://crm.example/unsubscribe?r=c1&amp;t=abc\"", mail.Html, StringComparison.Ordinal);
        Assert.Contains("Fresh ideas for your shop.<br>\nOnly until the end of April.", mail.Html, StringComparison.Ordinal);
        Assert.Contains("99,50 €", mail.Html, StringComparison.Ordinal);
        Assert.Contains("Green tea box", mail.Html, StringComparison.Ordinal);
        Assert.Contains("href=\"https://shop.example/spring?utm=mail&amp;x=1\"", mail.Html, StringComparison.Ordinal);
        Assert.Contains("Unsubscribe at any time: " + Unsubscribe, mail.Text, StringComparison.Ordinal);
        Assert.Contains("See all offers: https://shop.example/spring?utm=mail&x=1", mail.Text, StringComparison.Ordinal);
        Assert.Contains("* Coffee grinder - 99,50 €", mail.Text, StringComparison.Ordinal);
        // Header (sender) before the content, footer after it.
        var header = mail.Html.IndexOf("Nordlicht Handel</td>", StringComparison.Ordinal);
        var body = mail.Html.IndexOf("Spring is here</h1>", StringComparison.Ordinal);
        var footer = mail.Html.IndexOf(">Unsubscribe</a>", StringComparison.Ordinal);
        Assert.True(header >= 0 && header < body && body < footer, mail.Html);
    }
}
