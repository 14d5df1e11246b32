#!/usr/bin/python3
"""page_check.py URL SCREENSHOT STEP... -- IMAGE...

Drives the gateway's page in a real browser (Debian's chromium through
chromedriver, headless): builds the pipeline from the steps given (each
"op" or "op=arg") with the page's own controls, drops the images on the
page as a person would (a drop event carrying the files), presses Process,
waits for every image to come back, and prints one line per image:

    NAME STATE WIDTH HEIGHT BYTES SEEN

SEEN is the states the page showed it in, in order.  The last lines are
"socket yes|no" (the WebSocket was open) and "console N" followed by the
browser's errors (a Content-Security-Policy refusal, a script error).  A
screenshot of the finished page is saved to SCREENSHOT.
"""
import sys

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.support.ui import WebDriverWait

DROP = """
const input = arguments[0], target = document.getElementById("drop");
const dt = new DataTransfer();
for (const f of input.files) dt.items.add(f);
target.dispatchEvent(new DragEvent("dragover", {dataTransfer: dt, bubbles: true, cancelable: true}));
target.dispatchEvent(new DragEvent("drop", {dataTransfer: dt, bubbles: true, cancelable: true}));
input.remove();
"""


def main():
    url, shot = sys.argv[1], sys.argv[2]
    rest = sys.argv[3:]
    cut = rest.index("--")
    steps, images = rest[:cut], rest[cut + 1:]

    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              "--window-size=1280,1800"):
        opts.add_argument(a)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
    try:
        driver.get(url)
        wait = WebDriverWait(driver, 60)
        # The page has asked /v1/info and offers its default step.
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#add-op option"))
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#steps li"))
        for b in driver.find_elements(By.CSS_SELECTOR, "#steps li button"):
            b.click()
        for step in steps:
            op, _, arg = step.partition("=")
            driver.find_element(By.CSS_SELECTOR, "#add-op option[value='%s']" % op).click()
            driver.find_element(By.ID, "add").click()
            if arg:
                driver.find_elements(By.CSS_SELECTOR, "#steps li")[-1] \
                      .find_element(By.TAG_NAME, "input").send_keys(arg)
        print("pipeline", driver.find_element(By.ID, "pipeline").text)

        # A file input of the test's own, to carry the files into a drop event.
        carrier = driver.execute_script(
            "const i = document.createElement('input'); i.type = 'file'; i.multiple = true;"
            "document.body.append(i); return i;")
        carrier.send_keys("\n".join(images))
        driver.execute_script(DROP, carrier)
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#list li")) == len(images))
        wait.until(lambda d: d.execute_script("return socket !== null"))
        driver.find_element(By.ID, "run").click()

        # Every image back, done or failed: 5 minutes for 20 photos on 2 cores.
        try:
            WebDriverWait(driver, 40, poll_frequency=0.2).until(lambda d: all(
                li.get_attribute("data-state") in ("done", "failed", "cancelled")
                for li in d.find_elements(By.CSS_SELECTOR, "#list li")))
        except TimeoutException:
            print("timeout: not every image came back")
        for li in driver.find_elements(By.CSS_SELECTOR, "#list li"):
            print(li.find_element(By.CLASS_NAME, "name").text, li.get_attribute("data-state"),
                  li.get_attribute("data-width"), li.get_attribute("data-height"),
                  li.get_attribute("data-bytes"),
                  (li.get_attribute("data-seen") or "").replace(" ", ","),
                  li.find_element(By.CLASS_NAME, "state").text.replace(" ", "_"))
        print("summary", driver.find_element(By.ID, "summary").text)
        print("error", driver.find_element(By.ID, "error").text or "-")
        print("socket", "yes" if driver.execute_script("return socket !== null") else "no")
        driver.execute_script("window.scrollTo(0, 0)")
        driver.save_screenshot(shot)
        # A refused request (the text file's 415) is the test's own doing, not an error.
        errors = [e["message"] for e in driver.get_log("browser")
                  if e["level"] == "SEVERE" and not (e.get("source") == "network" and
                                                     "status of 415" in e["message"])]
        print("console", len(errors))
        for e in errors:
            print("#", e)
    finally:
        driver.quit()


if __name__ == "__main__":
    main()
